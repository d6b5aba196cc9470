"""Learning-rate and KL-weight schedules as pure functions of the step, so resuming needs no state."""

from __future__ import annotations

import math


def learning_rate(step: int, total_steps: int, base_lr: float, schedule: str, warmup_steps: int) -> float:
    if warmup_steps and step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    if schedule == "constant":
        return base_lr
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return base_lr * (0.02 + 0.98 * 0.5 * (1.0 + math.cos(math.pi * progress)))


def kl_weight(step: int, steps_per_epoch: int, beta: float, warmup_epochs: int) -> float:
    if warmup_epochs <= 0:
        return beta
    return beta * min(1.0, (step + 1) / (warmup_epochs * steps_per_epoch))
