"""``vaetools denoise``: noisy images in, cleaned images out (in the same form), with before/after scores."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from vaetools_pipelines.figures import thumbnail_rows
from vaetools_pipelines.image_writers import write_like_source
from vaetools_pipelines.latent_inputs import ensure_out_dir
from vaetools_pipelines.run_inputs import load_model_and_data
from vaetools_pipelines.output_set import writes_output_set
from vae_tools.atomic import write_json
from vae_tools.data import load_dataset
from vae_tools.denoising import denoise
from vae_tools.errors import DataError
from vae_tools.image_quality import psnr_ssim
from vae_tools.models.noise import parse_noise
from vae_tools.tables import write_table


def load_reference(reference: str, dataset, split: str) -> np.ndarray:
    clean = load_dataset(reference, channels=dataset.shape[0], split=split)
    if len(clean) != len(dataset):
        raise DataError(f"{reference}: holds {len(clean)} images but the data to clean holds {len(dataset)}")
    if tuple(clean.shape) != tuple(dataset.shape):
        raise DataError(f"{reference}: images are {clean.shape[1]}x{clean.shape[2]} but the data's are "
                        f"{dataset.shape[1]}x{dataset.shape[2]}")
    return clean.batch(np.arange(len(clean))).numpy()


@writes_output_set
def run_denoise(
    model_dir: str | Path,
    data: str,
    out: str | Path,
    reference: Optional[str] = None,
    add_noise: Optional[str] = None,
    split: str = "all",
    batch_size: int = 512,
    n_examples: int = 8,
    device: str = "auto",
    seed: int = 0,
    progress: bool = True,
    write: bool = True,
) -> dict:
    """Writes the cleaned images (images/ for a folder, denoised.npy/.npz for arrays), comparison.png,
    and with a clean reference (``reference``, or the data itself under ``add_noise``)
    metrics.json plus quality_per_image.csv. Under torchrun every process cleans its share; only
    the one with ``write`` writes (the others return an empty dict)."""
    if reference and add_noise:
        raise DataError("--add-noise corrupts clean data, which then is its own reference; drop --reference")
    if add_noise is not None and not add_noise.strip():
        raise DataError("--add-noise is empty: give a noise such as gaussian:0.5, or leave the option out")
    if add_noise:
        parse_noise(add_noise)
    model, dataset, torch_device = load_model_and_data(model_dir, data, split, device)
    clean = load_reference(reference, dataset, split) if reference else None
    inputs, cleaned = denoise(model, dataset, batch_size=batch_size, device=torch_device, add_noise=add_noise,
                              seed=seed, progress=progress)
    if not write:
        return {}
    if add_noise:
        clean = dataset.batch(np.arange(len(dataset))).numpy()
    out = ensure_out_dir(out)
    written = write_like_source(dataset, cleaned, out)
    summary = {"n_images": len(dataset), "output": str(written.relative_to(out)), "add_noise": add_noise,
               "reference": reference, "model": str(model_dir)}

    shown = np.random.default_rng(seed).choice(len(dataset), size=min(n_examples, len(dataset)), replace=False)
    shown.sort()
    rows = [("input" if not add_noise else f"noisy ({add_noise})", inputs[shown], [""] * len(shown)),
            ("denoised", cleaned[shown], [""] * len(shown))]
    if clean is not None:
        rows.append(("clean", clean[shown], [""] * len(shown)))
    thumbnail_rows(rows, out / "comparison.png", title="rows: the noisy input, the denoised output"
                   + (", the clean image" if clean is not None else ""), max_columns=n_examples)

    if clean is not None:
        psnr_before, ssim_before = psnr_ssim(clean, inputs)
        psnr_after, ssim_after = psnr_ssim(clean, cleaned)
        per_image = pd.DataFrame({"id": dataset.ids.astype(str), "psnr_before": psnr_before, "psnr_after": psnr_after,
                                  "ssim_before": ssim_before, "ssim_after": ssim_after}).round(4)
        write_table(per_image, out / "quality_per_image.csv")
        summary.update({
            "psnr_db": {"before": float(psnr_before.mean()), "after": float(psnr_after.mean()),
                        "gain": float(psnr_after.mean() - psnr_before.mean())},
            "ssim": {"before": float(ssim_before.mean()), "after": float(ssim_after.mean()),
                     "gain": float(ssim_after.mean() - ssim_before.mean())},
            "per_image": "quality_per_image.csv",
        })
        write_json(out / "metrics.json", summary)
    return summary
