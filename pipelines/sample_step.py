"""``vaetools sample``: new images from the model's prior, or from a mixture fitted to its latents."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import click

from vaetools_pipelines import common_options as common
from vaetools_pipelines.option_types import FiniteFloat
from vaetools_pipelines.output_set import writes_output_set
from vaetools_pipelines.sections import one_figure
from vaetools_pipelines.step_api import Step, option
from vaetools_pipelines.steps import model_only

SAMPLERS = ("gmm", "prior")


@dataclass(frozen=True)
class SampleParameters:
    model_dir: str = common.model_run()
    out: str = common.out_folder()
    n: int = option(64, type=click.IntRange(min=1, max=10_000), help="Images to draw.")
    sampler: str = option("gmm", type=click.Choice(SAMPLERS),
                          help="gmm: codes from a Gaussian mixture fitted to the latent codes of the training images (they "
                               "land where the decoder was trained: sharper images); prior: codes from N(0, I).")
    temperature: float = option(1.0, type=FiniteFloat(0, 10),
                                help="Spread of the codes: below 1 gives typical, cleaner images; above 1 more varied, "
                                     "stranger ones.")
    data: str = common.data("fit the mixture to instead of the training images", required=False)
    split: str = common.split()
    device: str = common.device()
    seed: int = common.seed("Random seed: the same seed gives the same pictures.")
    quiet: bool = common.quiet_without_progress()


def model_and_sampler(model_dir, sampler: str, data: Optional[str], split: str, device: str, seed: int):
    """(the model, its sampler or None for the prior, a sentence saying where the codes come from)."""
    from vae_tools.generation import GaussianMixtureSampler
    from vaetools_pipelines.run_inputs import load_model_only, model_and_latent_summary

    if sampler == "prior":
        return load_model_only(model_dir, device)[0], None, "the prior N(0, I)"
    model, _, summary, whose = model_and_latent_summary(
        model_dir, data, split, device, seed, needed_for=", which --sampler gmm fits its mixture to",
        otherwise=", or use --sampler prior")
    mixture: GaussianMixtureSampler = summary.mixture
    return model, mixture, f"a {mixture.n_components_}-component Gaussian mixture fitted to the latent codes of {whose}"


@writes_output_set
def run(p: SampleParameters) -> dict:
    """Writes samples.png (a grid), samples.npz (x: 8-bit images, z: their codes), images/ (one PNG
    each) and summary.json (where the codes came from, the samples' mean negative ELBO)."""
    import numpy as np

    from vae_tools.atomic import write_json
    from vae_tools.generation import negative_elbo, sample
    from vaetools_pipelines.figures import save_grid
    from vaetools_pipelines.image_writers import save_images_npz, save_png_folder

    model, mixture, origin = model_and_sampler(p.model_dir, p.sampler, p.data, p.split, p.device, p.seed)
    drawn = sample(model, p.n, sampler=mixture, temperature=p.temperature, seed=p.seed)
    out = Path(p.out)
    save_grid(drawn.images, out / "samples.png", columns=math.ceil(math.sqrt(p.n)))
    save_images_npz(out / "samples.npz", {"x": drawn.images}, z=drawn.latents.numpy())
    save_png_folder(drawn.images, out / "images", [f"sample_{k:05d}.png" for k in range(p.n)])
    neg_elbo = negative_elbo(model, drawn.images, seed=p.seed)
    summary = {"n": p.n, "sampler": p.sampler, "codes_from": origin, "temperature": p.temperature, "seed": p.seed,
               "model": str(p.model_dir), "mean_negative_elbo": float(np.mean(neg_elbo)),
               "files": ["samples.png", "samples.npz", "images/"]}
    write_json(out / "summary.json", summary)
    return summary


def report(summary: dict, p: SampleParameters) -> list:
    from pathlib import Path

    return [f"drew {p.n} images from {summary['codes_from']}; grid: {Path(p.out) / 'samples.png'}"]


SECTION = one_figure("sample", "samples.png", "New images drawn by the model", "Codes drawn from a Gaussian " "mixture fitted to the training images' latent codes, decoded. Blurry or broken shapes " "mean the model has not learned the data well enough to generate it.", "480px")


STEP = Step(name="sample", section=SECTION, parameters=SampleParameters, run=run, report=report, output="samples",
            supplies=model_only, needs=("train",),
            help="Generate new images: samples.png (a grid), samples.npz (x: 8-bit images, z: their codes), images/ "
                 "(one PNG each) and summary.json.")
