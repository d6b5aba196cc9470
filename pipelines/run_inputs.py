"""A trained run folder and the data it is applied to, loaded with the run's own preprocessing."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import click
import numpy as np
import torch
from torch import nn

from vae_tools.data import ImageDataset, load_dataset
from vae_tools.device import resolve_device
from vae_tools.errors import DataError, RunFolderError
from vae_tools.run_folder import load_run, model_folder
from vae_tools import distributed


def load_model_and_data(model_dir: str | Path, data: str, split: str = "all",
                        device: str = "auto") -> tuple[nn.Module, ImageDataset, torch.device]:
    """The model on its device (under torchrun, this process's GPU), and ``data`` resized/converted
    the way the model was trained."""
    torch_device = distributed.local_device(resolve_device(device or "auto"))
    model, config = load_run(model_dir, torch_device)
    prep = config["preprocessing"]
    dataset = load_dataset(data, image_size=tuple(prep["image_size"]), channels=prep["channels"], split=split)
    # Images of the size training read are resized as training resized them: nothing to warn of.
    trained_from = (config.get("choices", {}).get("image_size") or {}).get("native")
    expected = {tuple(dataset.image_size)} | ({tuple(trained_from)} if trained_from else set())
    resized = sorted(dataset.native_sizes - expected)
    if resized:
        sizes = ", ".join(f"{h}x{w}" for h, w in resized[:3]) + (" ..." if len(resized) > 3 else "")
        height, width = dataset.image_size
        click.echo(f"Warning: {data} holds images of {sizes}; the model in {model_dir} was trained on {height}x{width}, "
                   f"so they are resized to {height}x{width} for it", err=True)
    return model, dataset, torch_device


def positions_of_ids(dataset: ImageDataset, ids, data: str) -> np.ndarray:
    """Where each id sits in ``dataset``; one error line for the first id it does not hold."""
    index = {str(v): k for k, v in enumerate(dataset.ids)}
    missing = [str(v) for v in ids if str(v) not in index]
    if missing:
        examples = ", ".join(str(v) for v in dataset.ids[:3])
        raise DataError(f"{data}: no image has the id {missing[0]!r} (its ids look like {examples})")
    return np.array([index[str(v)] for v in ids], dtype=np.int64)


def load_model_only(model_dir: str | Path, device: str = "auto") -> tuple[nn.Module, Path]:
    """The model of a run folder on its device, and the folder that holds it."""
    return load_run(model_dir, resolve_device(device or "auto"))[0], model_folder(model_dir)


def model_and_latent_summary(model_dir: str | Path, data: Optional[str], split: str, device: str, seed: int,
                             needed_for: str, otherwise: str = ""):
    """The run's model (loaded once) and a summary of its latent codes: measured on ``data`` when
    given, else the one ``vaetools train`` kept. Returns (model, run folder, summary, whose codes).
    ``needed_for`` and ``otherwise`` complete the error for a run folder that kept none."""
    from vae_tools.generation import load_latent_summary, summarise_latents

    if data:
        model, dataset, _ = load_model_and_data(model_dir, data, split, device)
        summary = summarise_latents(model, dataset, seed=seed)
        return model, model_folder(model_dir), summary, f"{summary.n_images} images of {data}"
    model, run_dir = load_model_only(model_dir, device)
    summary = load_latent_summary(run_dir, model.latent_dim)
    if summary is None:
        raise RunFolderError(f"{run_dir}: has no latent summary (trained by an earlier vaetools){needed_for}; "
                             f"give --data with the training images{otherwise}")
    return model, run_dir, summary, f"{summary.n_images} training images"
