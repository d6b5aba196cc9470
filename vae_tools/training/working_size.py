"""The size the images are trained and used at, chosen from the images and the device.

A photo taken at 224 px or more costs about fifty times a 32 px one per training step: on a 2-core
CPU the photo model took 22 s a step of 128 such images, so the 45-minute budget held 4 of its 112
planned epochs, and the images held at full size took 9.6 GB. What the codes hold (a few dozen
numbers per image) does not need every pixel. So unless the user sets ``image_size``, training
measures its own step on this device at the sizes below the images' own and keeps the largest at
which the planned epochs fit the budget (the model's CPU budget, or ``NOMINAL_MINUTES`` where it has
none, as on a GPU). The images are then decoded once at that size, and every later command reads
them at it (the run folder records it as the model's image size)."""

from __future__ import annotations

import time
from typing import Callable, Optional

import torch

from vae_tools.config import TrainConfig
from vae_tools.training.seeding import keeps_global_rng

# The shorter side's candidates: none of them above the images' own.
SIDES = (32, 48, 64, 96, 128, 192, 256, 384, 512)
NOMINAL_MINUTES = 45.0  # the budget the size is planned for where the run itself has none
# The step is timed on this many images (the real batch where smaller), after WARM_UP_STEPS: the
# first steps at a new size set up their kernels and took 3-10 times as long on a 2-core CPU.
PROBE_IMAGES = 64
WARM_UP_STEPS = 2
TIMED_STEPS = 2
# An epoch also validates, moves batches and saves: its steps' time plus this share.
EPOCH_OVERHEAD = 1.1


def scaled(size: tuple, side: int) -> tuple:
    """``size`` (height, width) scaled so that its shorter side is ``side``."""
    height, width = size
    factor = side / min(height, width)
    return max(8, round(height * factor)), max(8, round(width * factor))


def working_size(config: TrainConfig, native: tuple, n_train: int, planned_epochs: int,
                 minutes: Optional[float], seconds_per_image: Callable[[tuple], float]) -> dict:
    """{"value": [height, width], "why", ...}: the images' own size where it fits (or is no larger
    than the smallest candidate), else the largest candidate size whose measured pace
    (``seconds_per_image(size)``) runs ``planned_epochs`` of ``n_train`` images within the budget."""
    if config.image_size is not None:
        return {"value": list(config.image_size), "automatic": False, "why": "set by the user"}
    native = tuple(int(v) for v in native)
    smaller = [side for side in SIDES if side < min(native)]
    if not smaller:
        return {"value": list(native), "native": list(native), "plain": True,
                "why": f"the images' own size, {native[0]}x{native[1]}"}
    budget = minutes or NOMINAL_MINUTES
    sizes = [scaled(native, side) for side in smaller] + [native]
    paces = {}
    for size in sizes:  # smallest first: the larger ones are dearer to measure and stop being candidates
        paces[size] = seconds_per_image(size)
        if _epoch_minutes(paces[size], n_train) * planned_epochs > budget:
            break
    fitting = [size for size, pace in paces.items() if _epoch_minutes(pace, n_train) * planned_epochs <= budget]
    chosen = max(fitting, key=lambda size: size[0] * size[1]) if fitting else sizes[0]
    epoch = _epoch_minutes(paces[chosen], n_train)
    measured = ", ".join(f"{h}x{w} {_epoch_minutes(pace, n_train):.1f} min" for (h, w), pace in paces.items())
    why = (f"the images are {native[0]}x{native[1]}; an epoch of {n_train:,} of them measured here at {measured}, "
           f"so {chosen[0]}x{chosen[1]}")
    why += (f", the largest at which {planned_epochs} epochs (the basic length) fit in {budget:g} min "
            f"({epoch * planned_epochs:.0f} min)"
            if fitting else f", the smallest tried: {planned_epochs} epochs do not fit in {budget:g} min at any")
    return {"value": list(chosen), "native": list(native), "minutes_per_epoch": round(epoch, 2), "why": why}


def _epoch_minutes(seconds_per_image: float, n_train: int) -> float:
    return seconds_per_image * n_train * EPOCH_OVERHEAD / 60.0


def measured_pace(build_model: Callable[[tuple], torch.nn.Module], images_at: Callable[[tuple], torch.Tensor],
                  device: torch.device) -> Callable[[tuple], float]:
    """``seconds_per_image(size)``: the time of a training step (forward, backward, update) of the
    model built for ``size`` on ``images_at(size)``, per image: the quickest of ``TIMED_STEPS`` after
    ``WARM_UP_STEPS`` (another job on the machine only ever slows a step down)."""

    @keeps_global_rng
    def seconds_per_image(size: tuple) -> float:
        torch.manual_seed(0)
        model = build_model(size).to(device).train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        x = images_at(size).to(device)
        times = []
        for _ in range(WARM_UP_STEPS + TIMED_STEPS):
            started = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            recon, kl, extra = model.training_terms(x)
            (recon.mean() + kl.mean() + extra).backward()
            optimizer.step()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            times.append(time.perf_counter() - started)
        return min(times[WARM_UP_STEPS:]) / len(x)

    return seconds_per_image
