"""The batch size, learning rate, compilation and decoding workers of a run, chosen for the device
(as its precision is, training/precision.py) where the configuration leaves them unset. Plain
Python, so that the command line can show these defaults without importing torch.

On a CPU a step of the small default model is bound by arithmetic; 128 images a step at a peak
learning rate of 2e-3 are the settings every CPU figure in bench/results was measured with, and a
CPU keeps them. On one H100 the same settings left the GPU mostly idle: 33,000 images/s at batch 128
against 222,000 at batch 1,024 (bench/results/scale_gpu.json). So a GPU process takes up to
GPU_BATCH_SIZE images a step, fewer where the data would then give fewer than MIN_STEPS_PER_EPOCH
steps an epoch (on a small set "at least 3,000 steps" would otherwise mean thousands of epochs).
An unset learning rate follows a batch chosen so by the square-root rule of Adam-type optimisers
(Malladi et al., 2022, "On the SDEs and scaling rules for adaptive gradient algorithms"): the noise
of a step stays what it was at 128. A batch size the user sets keeps 2e-3, as it always had.

Compiling costs about a minute and saved 2.6 µs an image at batch 1,024 on that H100 (222,000 ->
529,000 images/s), so it pays from about COMPILE_MIN_IMAGES images of training. Image files are
decoded by DataLoader workers on a GPU machine, where the GPU would otherwise wait for the decoder;
on a CPU they would take cores from the training itself, so none.

Each choice is recorded under config.json's ``choices``; those marked ``plain`` (what every CPU run
has) are not printed."""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Optional

from vae_tools.config import TrainConfig

if TYPE_CHECKING:
    import torch

CPU_BATCH_SIZE = 128
BASE_LR = 2e-3  # at CPU_BATCH_SIZE images a step
GPU_BATCH_SIZE = 1024  # per GPU process
MIN_STEPS_PER_EPOCH = 50
COMPILE_MIN_IMAGES = 25_000_000
GPU_WORKERS = 8  # per process, at most


def scaled_lr(batch_size: int) -> float:
    return BASE_LR * math.sqrt(batch_size / CPU_BATCH_SIZE)


def batch_choice(config: TrainConfig, device: torch.device, n_train: int, world: int = 1) -> dict:
    """The global batch size (``value``) and why; ``config.batch_size`` set decides."""
    if config.batch_size is not None:
        return {"value": config.batch_size, "automatic": False, "why": "set by the user"}
    if device.type != "cuda":
        return {"value": CPU_BATCH_SIZE, "plain": True,
                "why": f"{CPU_BATCH_SIZE} images a step on {device.type}, where a step of these models is bound by "
                       "arithmetic, not by the batch"}
    most = GPU_BATCH_SIZE * world
    fitting = 2 ** int(math.log2(max(1, n_train // MIN_STEPS_PER_EPOCH)))
    value = max(CPU_BATCH_SIZE, world, min(most, fitting))
    where = f"each of {world} GPUs" if world > 1 else "the GPU"
    why = (f"{value // world} images a step on {where}: a GPU is mostly idle at {CPU_BATCH_SIZE} (an H100 trained "
           f"33,000 images/s at {CPU_BATCH_SIZE}, 222,000 at {GPU_BATCH_SIZE})")
    if value < most:
        why += f"; no more, so that {n_train:,} training images still give {MIN_STEPS_PER_EPOCH} or more steps an epoch"
    return {"value": value, "why": why}


def lr_choice(config: TrainConfig, batch: dict) -> dict:
    """The peak learning rate and why, for the batch size ``batch`` (a ``batch_choice``)."""
    if config.lr is not None:
        return {"value": config.lr, "automatic": False, "why": "set by the user"}
    batch_size = batch["value"]
    if not batch.get("automatic", True):
        return {"value": BASE_LR, "plain": True, "why": f"{BASE_LR:g} for a batch size set by the user"}
    value = scaled_lr(batch_size)
    if batch_size == CPU_BATCH_SIZE:
        return {"value": value, "plain": True, "why": f"{BASE_LR:g} at {CPU_BATCH_SIZE} images a step"}
    return {"value": value, "why": f"{BASE_LR:g} at {CPU_BATCH_SIZE} images a step times sqrt({batch_size}/"
                                   f"{CPU_BATCH_SIZE}) (Adam's square-root scaling rule), so {value:.3g}"}


def compile_choice(config: TrainConfig, device: torch.device, planned_images: int) -> dict:
    """Whether to torch.compile the loss, from the device and the planned images of training."""
    if config.compile is not None:
        return {"value": config.compile, "automatic": False, "why": "set by the user"}
    if device.type != "cuda":
        return {"value": False, "plain": True, "why": f"not on {device.type}, where compiling was not measured to pay "
                                        "(compile=true tries it)"}
    if planned_images < COMPILE_MIN_IMAGES:
        return {"value": False, "why": f"{planned_images:,} images of training at most: compiling (about a minute) "
                                       f"pays from about {COMPILE_MIN_IMAGES:,}"}
    return {"value": True, "why": f"{planned_images:,} images of training at most: compiling (about a minute) "
                                  f"pays from about {COMPILE_MIN_IMAGES:,}"}


def workers_choice(config: TrainConfig, device: torch.device, reader, world: int = 1,
                   cpus: Optional[int] = None) -> dict:
    """DataLoader processes decoding image files, per process."""
    if config.workers is not None:
        return {"value": config.workers, "automatic": False, "why": "set by the user"}
    if not getattr(reader, "decodes_files", False):
        return {"value": 0, "plain": True, "why": "the images are arrays, read without decoding"}
    if device.type != "cuda":
        return {"value": 0, "plain": True, "why": f"on {device.type} decoding workers would take cores from the training"}
    cpus = cpus or os.cpu_count() or 1
    value = max(0, min(GPU_WORKERS, cpus // world - 1))
    return {"value": value, "why": f"{value} processes decode the image files ahead of the GPU "
                                   f"({cpus} CPU cores{f' shared by {world} processes' if world > 1 else ''})"}
