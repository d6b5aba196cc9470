"""Clean images with a trained (denoising) VAE: the decoder's mean image at the posterior mean."""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from vae_tools.data import ImageDataset
from vae_tools.data.arrays import ArrayReader
from vae_tools.errors import DataError
from vae_tools.models.base import BaseVAE
from vae_tools.models.noise import corrupt, parse_noise
from vae_tools.progress import progress as progress_of
from vae_tools import distributed
from vae_tools.models.defaults import INFERENCE_BATCH_SIZE


@torch.no_grad()
def denoise(model: BaseVAE, images, batch_size: int = INFERENCE_BATCH_SIZE, device: torch.device | str = "cpu",
            add_noise: Optional[str] = None, seed: int = 0, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Returns (inputs, denoised), both float32 (N, C, H, W) in [0, 1]. ``images`` is an
    ImageDataset or an array in any layout ``load_dataset`` accepts, scaled the same way (uint8 / 255,
    floats in [0, 1] or [0, 255]); with ``add_noise`` (e.g. "gaussian:0.5") the clean images are
    corrupted first, reproducibly for a given ``seed``, and ``inputs`` holds the corrupted ones.

    Under torch.distributed each process cleans its own block of whole batches (the corruption of a
    batch depends only on ``seed`` and its first row) and every process gets all of them, in order."""
    if not isinstance(images, ImageDataset):
        array = np.asarray(images)
        if array.ndim < 2 or len(array) == 0:
            raise DataError(f"expected an array of images, got shape {array.shape}")
        images = ImageDataset(ArrayReader(array, "images"), np.arange(len(array)).astype(str))
    shape, count = tuple(images.shape), len(images)
    read = lambda start, stop: images.batch(np.arange(start, stop))  # noqa: E731
    if shape != tuple(model.image_shape):
        raise DataError(f"images are {shape} but the model was trained on {tuple(model.image_shape)}")
    noises = parse_noise(add_noise) if add_noise else None
    model = model.to(device).eval()
    start, stop = distributed.batch_share(count, batch_size)
    inputs, cleaned = [], []
    for first in progress_of(range(start, stop, batch_size), desc="denoising", enabled=progress, unit="batch"):
        x = read(first, min(first + batch_size, count))
        if noises is not None:
            x = corrupt(x, noises, distributed.batch_generator(seed, first))
        inputs.append(x)
        cleaned.append(model.reconstruct(x.to(device)).float().clamp(0, 1).cpu())
    empty = torch.zeros((0, *shape))
    inputs = distributed.gather_batches(inputs, count, batch_size, empty)
    cleaned = distributed.gather_batches(cleaned, count, batch_size, empty)
    return inputs.numpy(), cleaned.numpy()
