"""``vaetools sample``: new images from the model's prior, or from a mixture fitted to its latents."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import numpy as np

from vaetools_pipelines.figures import save_grid
from vaetools_pipelines.image_writers import save_images_npz, save_png_folder
from vaetools_pipelines.output_set import writes_output_set
from vaetools_pipelines.run_inputs import load_model_only, model_and_latent_summary
from vae_tools.atomic import write_json
from vae_tools.generation import GaussianMixtureSampler, negative_elbo, sample

SAMPLERS = ("gmm", "prior")


def model_and_sampler(model_dir, sampler: str, data: Optional[str], split: str, device: str, seed: int):
    """(the model, its sampler or None for the prior, a sentence saying where the codes come from)."""
    if sampler == "prior":
        return load_model_only(model_dir, device)[0], None, "the prior N(0, I)"
    model, _, summary, whose = model_and_latent_summary(
        model_dir, data, split, device, seed, needed_for=", which --sampler gmm fits its mixture to",
        otherwise=", or use --sampler prior")
    mixture: GaussianMixtureSampler = summary.mixture
    return model, mixture, f"a {mixture.n_components_}-component Gaussian mixture fitted to the latent codes of {whose}"


@writes_output_set(replaces=("images/sample_*.png",))
def run_sample(model_dir: str | Path, out: str | Path, n: int = 64, sampler: str = "gmm", temperature: float = 1.0,
               data: Optional[str] = None, split: str = "all", device: str = "auto", seed: int = 0) -> dict:
    """Writes samples.png (a grid), samples.npz (x: 8-bit images, z: their codes), images/ (one PNG
    each) and summary.json (where the codes came from, the samples' mean negative ELBO)."""
    model, mixture, origin = model_and_sampler(model_dir, sampler, data, split, device, seed)
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
