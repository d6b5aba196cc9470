"""``vaetools sample``: new images from the model's prior, or from a mixture fitted to its latents."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import numpy as np

from pipelines.figures import save_grid
from pipelines.image_writers import save_images_npz, save_png_folder
from pipelines.output_set import writes_output_set
from pipelines.run_inputs import load_model_and_data, load_model_only
from vae_tools.atomic import write_json
from vae_tools.errors import RunFolderError
from vae_tools.generation import GaussianMixtureSampler, load_latent_summary, negative_elbo, sample, summarise_latents

SAMPLERS = ("gmm", "prior")


def choose_sampler(model, run_dir: Path, sampler: str, data: Optional[str], split: str, device: str, seed: int):
    """(sampler object or None for the prior, a sentence saying where its codes come from)."""
    if sampler == "prior":
        return None, "the prior N(0, I)"
    if data:
        model, dataset, _ = load_model_and_data(run_dir, data, split, device)
        summary = summarise_latents(model, dataset, seed=seed)
        where = f"{summary.n_images} images of {data}"
    else:
        summary = load_latent_summary(run_dir, model.latent_dim)
        if summary is None:
            raise RunFolderError(f"{run_dir}: has no latent summary (trained by an earlier vaetools), which "
                                 "--sampler gmm fits its mixture to; give --data with the training images, "
                                 "or use --sampler prior")
        where = f"{summary.n_images} training images"
    mixture: GaussianMixtureSampler = summary.mixture
    return mixture, f"a {mixture.n_components_}-component Gaussian mixture fitted to the latent codes of {where}"


@writes_output_set
def run_sample(model_dir: str | Path, out: str | Path, n: int = 64, sampler: str = "gmm", temperature: float = 1.0,
               data: Optional[str] = None, split: str = "all", device: str = "auto", seed: int = 0) -> dict:
    """Writes samples.png (a grid), samples.npz (x: 8-bit images, z: their codes), images/ (one PNG
    each) and summary.json (where the codes came from, the samples' mean negative ELBO)."""
    model, run_dir = load_model_only(model_dir, device)
    mixture, origin = choose_sampler(model, run_dir, sampler, data, split, device, seed)
    drawn = sample(model, n, sampler=mixture, temperature=temperature, seed=seed)
    out = Path(out)
    save_grid(drawn.images, out / "samples.png", columns=math.ceil(math.sqrt(n)))
    save_images_npz(out / "samples.npz", {"x": drawn.images}, z=drawn.latents.numpy())
    save_png_folder(drawn.images, out / "images", [f"sample_{k:05d}.png" for k in range(n)])
    neg_elbo = negative_elbo(model, drawn.images, seed=seed)
    summary = {"n": n, "sampler": sampler, "codes_from": origin, "temperature": temperature, "seed": seed,
               "model": str(model_dir), "mean_negative_elbo": float(np.mean(neg_elbo)),
               "files": ["samples.png", "samples.npz", "images/"]}
    write_json(out / "summary.json", summary)
    return summary
