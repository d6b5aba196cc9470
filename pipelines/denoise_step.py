"""``vaetools denoise``: noisy images in, cleaned images out (in the same form), with before/after scores."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import click

from vae_tools.models.defaults import INFERENCE_BATCH_SIZE
from vaetools_pipelines import common_options as common
from vaetools_pipelines.output_set import writes_output_set
from vaetools_pipelines.sections import Section, metrics_of
from vaetools_pipelines.step_api import Step, option
from vaetools_pipelines.steps import from_model


@dataclass(frozen=True)
class DenoiseParameters:
    model_dir: str = common.model_run("A run folder from `vaetools train` (best: --model denoising with the noise you have).")
    data: str = common.data()
    out: str = common.out_folder()
    reference: str = option(None, metavar="CLEAN_SOURCE", reads=True,
                            help="The clean images, same count and size, in the same order: adds metrics.json (PSNR, SSIM).")
    add_noise: str = option(None, metavar="SPEC",
                            help="Corrupt the (clean) data first, e.g. gaussian:0.5, salt-pepper:0.2, mask:0.5, block:0.3; "
                                 "the clean data is then the reference.")
    split: str = common.split()
    batch_size: int = common.batch_size(INFERENCE_BATCH_SIZE)
    n_examples: int = option(8, flags=("--examples",), type=click.IntRange(min=1, max=32), help="Columns of comparison.png.")
    device: str = common.device()
    seed: int = common.seed("Seed of --add-noise.")
    quiet: bool = common.quiet()


def load_reference(reference: str, dataset, split: str):
    import numpy as np

    from vae_tools.data import load_dataset
    from vae_tools.errors import DataError

    clean = load_dataset(reference, channels=dataset.shape[0], split=split)
    if len(clean) != len(dataset):
        raise DataError(f"{reference}: holds {len(clean)} images but the data to clean holds {len(dataset)}")
    if tuple(clean.shape) != tuple(dataset.shape):
        raise DataError(f"{reference}: images are {clean.shape[1]}x{clean.shape[2]} but the data's are "
                        f"{dataset.shape[1]}x{dataset.shape[2]}")
    return clean.batch(np.arange(len(clean))).numpy()


@writes_output_set
def run(p: DenoiseParameters) -> dict:
    """Writes the cleaned images (images/ for a folder, denoised.npy/.npz for arrays), comparison.png,
    and with a clean reference (``p.reference``, or the data itself under ``p.add_noise``)
    metrics.json plus quality_per_image.csv. Under torchrun every process cleans its share; only
    the first writes (the others return an empty dict)."""
    import numpy as np
    import pandas as pd

    from vae_tools.atomic import write_json
    from vae_tools.denoising import denoise
    from vae_tools.errors import DataError
    from vae_tools.image_quality import psnr_ssim
    from vae_tools.models.noise import parse_noise
    from vae_tools.tables import write_table
    from vae_tools import distributed
    from vaetools_pipelines.figures import thumbnail_rows
    from vaetools_pipelines.image_writers import write_like_source
    from vaetools_pipelines.latent_inputs import ensure_out_dir
    from vaetools_pipelines.run_inputs import load_model_and_data

    if p.reference and p.add_noise:
        raise DataError("--add-noise corrupts clean data, which then is its own reference; drop --reference")
    if p.add_noise is not None and not p.add_noise.strip():
        raise DataError("--add-noise is empty: give a noise such as gaussian:0.5, or leave the option out")
    if p.add_noise:
        parse_noise(p.add_noise)
    model, dataset, torch_device = load_model_and_data(p.model_dir, p.data, p.split, p.device)
    clean = load_reference(p.reference, dataset, p.split) if p.reference else None
    inputs, cleaned = denoise(model, dataset, batch_size=p.batch_size, device=torch_device, add_noise=p.add_noise,
                              seed=p.seed, progress=not p.quiet)
    if not distributed.is_main_process():
        return {}
    if p.add_noise:
        clean = dataset.batch(np.arange(len(dataset))).numpy()
    out = ensure_out_dir(p.out)
    written = write_like_source(dataset, cleaned, out)
    summary = {"n_images": len(dataset), "output": str(written.relative_to(out)), "add_noise": p.add_noise,
               "reference": p.reference, "model": str(p.model_dir), "image_size": list(dataset.image_size),
               "source_sizes": sorted(list(size) for size in dataset.native_sizes)}

    shown = np.random.default_rng(p.seed).choice(len(dataset), size=min(p.n_examples, len(dataset)), replace=False)
    shown.sort()
    rows = [("input" if not p.add_noise else f"noisy ({p.add_noise})", inputs[shown], [""] * len(shown)),
            ("denoised", cleaned[shown], [""] * len(shown))]
    if clean is not None:
        rows.append(("clean", clean[shown], [""] * len(shown)))
    thumbnail_rows(rows, out / "comparison.png", title="rows: the noisy input, the denoised output"
                   + (", the clean image" if clean is not None else ""), max_columns=p.n_examples)

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


def report(summary: dict, p: DenoiseParameters) -> list:

    scored = ""
    if "psnr_db" in summary:
        scored = (f"; PSNR {summary['psnr_db']['before']:.2f} -> {summary['psnr_db']['after']:.2f} dB, "
                  f"SSIM {summary['ssim']['before']:.3f} -> {summary['ssim']['after']:.3f}")
    lines = [f"denoised {summary['n_images']} images into {Path(p.out) / summary['output']}{scored}"]
    height, width = summary.get("image_size") or (0, 0)
    larger = [f"{h}x{w}" for h, w in summary.get("source_sizes", ()) if height and (h > height or w > width)]
    if larger:
        lines.append(f"written at {height}x{width}, the size the model works at (the files are {', '.join(larger[:3])}); "
                     "train with --image-size to work nearer their own size")
    return lines


def section(run: Path) -> Section:
    metrics = metrics_of(run, STEP.name)
    section = Section("Denoising")
    if "psnr_db" in metrics:
        psnr, ssim = metrics["psnr_db"], metrics["ssim"]
        section.sentences.append(
            f"Against the clean images: PSNR from {psnr['before']:.2f} dB for the noisy input to {psnr['after']:.2f} "
            f"dB denoised ({psnr['gain']:+.2f} dB; every 3 dB halves the squared error); SSIM from "
            f"{ssim['before']:.3f} to {ssim['after']:.3f} (1: the same structure as the clean image).")
    section.figures.append((run / STEP.output / "comparison.png", "Rows: the noisy input, the model's output, and "
                            "(when known) the clean image.", "100%"))
    return section


def key_figures(run: Path) -> list:
    denoise = metrics_of(run, STEP.name)
    if "psnr_db" not in denoise:
        return []
    return [("denoising PSNR", f"{denoise['psnr_db']['before']:.2f} → {denoise['psnr_db']['after']:.2f} dB "
                               f"(SSIM {denoise['ssim']['before']:.3f} → {denoise['ssim']['after']:.3f})")]


STEP = Step(
    name="denoise", section=section, key_figures=key_figures, parameters=DenoiseParameters, run=run, report=report, output="denoise",
    supplies=from_model, needs=("train",), distributed=True,
    help="""Clean noisy images with a trained VAE.

    Writes the cleaned images in the form they came in (a folder gives OUT/images/ with the same
    file names and formats; an .npy gives denoised.npy; other sources give denoised.npz) and
    comparison.png. With --reference or --add-noise also metrics.json (mean PSNR and SSIM before
    and after) and quality_per_image.csv.
    """)
