"""Corruptions for denoising: ``gaussian:SIGMA``, ``salt-pepper:P``, ``mask:P`` (pixel dropout),
``block:P`` (square patches dropped, each about 1/7 of the image side), or several joined by commas.

With several, each image in a batch gets one of them at random (a mix).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from vae_tools.errors import ConfigError

NOISE_KINDS = ("gaussian", "salt-pepper", "mask", "block")


@dataclass(frozen=True)
class Noise:
    kind: str
    amount: float

    def apply(self, x: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        if self.kind == "gaussian":
            noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            return (x + self.amount * noise).clamp(0.0, 1.0)
        if self.kind == "block":
            return x * self._block_keep(x, generator)
        # One draw per pixel location, shared by the channels, as a physical defect would be.
        shape = (x.shape[0], 1, *x.shape[2:])
        u = torch.rand(shape, generator=generator, device=x.device, dtype=x.dtype)
        if self.kind == "salt-pepper":
            salt = (u < self.amount / 2).to(x.dtype)
            pepper = ((u >= self.amount / 2) & (u < self.amount)).to(x.dtype)
            return x * (1 - salt - pepper) + salt
        return x * (u >= self.amount).to(x.dtype)

    def _block_keep(self, x: torch.Tensor, generator: Optional[torch.Generator]) -> torch.Tensor:
        """A 0/1 mask that drops each cell of a coarse grid with probability ``amount``."""
        height, width = x.shape[-2:]
        cell = max(2, min(height, width) // 7)
        grid = (x.shape[0], 1, -(-height // cell), -(-width // cell))
        keep = (torch.rand(grid, generator=generator, device=x.device) >= self.amount).to(x.dtype)
        return keep.repeat_interleave(cell, 2).repeat_interleave(cell, 3)[..., :height, :width]


def parse_noise(spec: str) -> list[Noise]:
    """Parse ``"gaussian:0.5"`` or ``"gaussian:0.3,mask:0.25"``; raises ConfigError naming the bad part."""
    parts = [p.strip() for p in str(spec).split(",") if p.strip()]
    if not parts:
        raise ConfigError("noise spec is empty; use e.g. gaussian:0.5, salt-pepper:0.2, mask:0.5 or block:0.3")
    noises = []
    for part in parts:
        kind, _, value = part.partition(":")
        kind = kind.strip().lower().replace("_", "-")
        if kind not in NOISE_KINDS:
            raise ConfigError(f"unknown noise {kind!r} in {spec!r}; use {', '.join(NOISE_KINDS)}")
        try:
            amount = float(value)
        except ValueError:
            raise ConfigError(f"noise {part!r} needs a number after the colon, e.g. {kind}:0.3") from None
        if kind == "gaussian" and not 0 < amount <= 5:
            raise ConfigError(f"gaussian noise sigma must be in (0, 5], got {amount}")
        if kind != "gaussian" and not 0 < amount <= 1:
            raise ConfigError(f"{kind} noise probability must be in (0, 1], got {amount}")
        noises.append(Noise(kind, amount))
    return noises


def corrupt(x: torch.Tensor, noises: list[Noise], generator: Optional[torch.Generator] = None) -> torch.Tensor:
    if len(noises) == 1:
        return noises[0].apply(x, generator)
    choice = torch.randint(len(noises), (x.shape[0],), generator=generator, device=x.device)
    out = torch.empty_like(x)
    for i, noise in enumerate(noises):
        chosen = choice == i
        if chosen.any():
            out[chosen] = noise.apply(x[chosen], generator)
    return out
