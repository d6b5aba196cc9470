"""A trained run folder and the data it is applied to, loaded with the run's own preprocessing."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from vae_tools.data import ImageDataset, load_dataset
from vae_tools.device import resolve_device
from vae_tools.run_folder import load_run


def load_model_and_data(model_dir: str | Path, data: str, split: str = "all",
                        device: str = "auto") -> tuple[nn.Module, ImageDataset, torch.device]:
    """The model on its device, and ``data`` resized/converted the way the model was trained."""
    torch_device = resolve_device(device or "auto")
    model, config = load_run(model_dir, torch_device)
    prep = config["preprocessing"]
    dataset = load_dataset(data, image_size=tuple(prep["image_size"]), channels=prep["channels"], split=split)
    return model, dataset, torch_device
