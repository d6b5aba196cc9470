"""Parameters many steps share, each declared here once (a function, as every dataclass needs its own field)."""

from __future__ import annotations

from dataclasses import dataclass

import click

from vae_tools.data import SOURCE_HELP
from vaetools_pipelines.step_api import option

DEVICES = ("auto", "cpu", "cuda", "mps")
SPLITS = ("all", "train", "test")


def data(purpose: str = "", required: bool = True):
    text = f"Images to {purpose}: {SOURCE_HELP}." if purpose else f"The images: {SOURCE_HELP}."
    return option(None, flags=("--data",), metavar="SOURCE", required=required, reads=True, help=text)


def model_run(help: str = "A run folder written by `vaetools train` (or a pipeline's run folder).", required: bool = True):
    return option(None, flags=("--model",), type=click.Path(), required=required, reads=True, help=help)


def out_folder(help: str = "Folder for the outputs."):
    return option(None, flags=("--out",), type=click.Path(file_okay=False), required=True, help=help)


def split():
    return option("all", type=click.Choice(SPLITS), help="Which part of a source with a train/test split to use.")


def device(default="auto"):
    return option(default, type=click.Choice(DEVICES), show_default=True if default else "auto",
                  help="Where to compute; auto picks CUDA, then MPS, then CPU.")


def workers():
    return option(0, type=click.IntRange(min=0),
                  help="Processes decoding image files in parallel (worth it for folders of JPEG/PNG); 0 decodes "
                       "in this process.")


def seed(help: str = "Random seed: the same seed gives the same result."):
    return option(0, type=int, help=help)


def quiet():
    return option(False, is_flag=True, help="No progress bars.")


def batch_size(default: int, help: str = "Images per batch."):
    return option(default, type=click.IntRange(min=1), help=help)


# Where a latent-space step (label-propagate, cluster, umap) gets its latents: --embeddings, or
# --model with --data.
def embeddings():
    return option(None, type=click.Path(), reads=True,
                  help="An embeddings table from `vaetools embed` (.parquet, .csv, .npz, or a partitioned .parquet folder).")


def latent_model():
    return model_run("A run folder from `vaetools train`; with --data the images are encoded now.", required=False)


def latent_data():
    return option(None, flags=("--data",), metavar="SOURCE", reads=True,
                  help="The images (needed with --model; with --embeddings, for thumbnails only).")


def umap_backend():
    from vae_tools.latent.defaults import UMAP_BACKEND, UMAP_BACKENDS

    return option(UMAP_BACKEND, flags=("--backend",), type=click.Choice(UMAP_BACKENDS),
                  help="Who computes the UMAP map: umap-learn (CPU, reproducible for a seed) or cuml (RAPIDS on an "
                       "NVIDIA GPU, for millions of points).")


def quiet_without_progress():
    """--quiet of a step that draws no progress bar: taken, so that a pipeline can pass it to every step."""
    return option(False, is_flag=True, help="Accepted for a uniform command line; this step draws no progress bar.")


@dataclass(frozen=True)
class LatentSource:
    """The parameters of a latent-space step (label-propagate, cluster, umap): its latents come from
    --embeddings, or from --model with --data; it writes a folder."""

    embeddings: str = embeddings()
    model_dir: str = latent_model()
    data: str = latent_data()
    split: str = split()
    device: str = device()
    out: str = out_folder()
