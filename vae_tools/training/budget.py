"""A training time budget: the epochs that fit in it at the pace measured so far.

Epoch counts alone do not say how long a run takes: the photo model's 30 epochs of 45,000 CIFAR-10
images take 31-50 minutes on a 2-core server (61-100 s an epoch, by the day) and could take hours on a slower laptop. A budget in
minutes is what a user can plan around, so the planned length is cut (never stretched) to what fits,
after each epoch, at the mean pace of the epochs run so far. The learning-rate schedule follows the
planned length, so a cut run still cools down at its end rather than stopping at a high rate."""

from __future__ import annotations

import math
from typing import Optional

import torch

from vae_tools.config import TrainConfig


def budget_minutes(config: TrainConfig, model, device: torch.device) -> Optional[float]:
    """The budget that applies: none when the epochs are set, else the configured one, else the
    model's own for a CPU (``cpu_minutes``; a GPU runs its default length in minutes anyway)."""
    if config.epochs is not None:
        return None
    if config.budget_minutes is not None:
        return config.budget_minutes
    return model.cpu_minutes if device.type == "cpu" else None


def epochs_within(minutes: Optional[float], epoch_seconds: list, planned: int) -> int:
    """The planned length cut to what fits in ``minutes`` (None: no budget) at the mean of
    ``epoch_seconds`` (the epochs run so far, earlier sessions of a resumed run included); never
    below the epochs done."""
    done = len(epoch_seconds)
    if minutes is None or not done:
        return planned
    spent = float(sum(epoch_seconds))
    pace = spent / done
    room = (minutes * 60.0 - spent) / pace if pace > 0 else math.inf
    if not room < planned:  # more than the plan needs (an infinite room too: a budget of 1e308 minutes)
        return max(done, planned)
    return max(done, min(planned, done + max(0, math.floor(room))))
