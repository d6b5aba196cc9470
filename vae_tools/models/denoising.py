"""Denoising VAE: the convolutional VAE trained on corrupted inputs against the clean images."""

from __future__ import annotations

from typing import Optional

import torch

from vae_tools.models.conv_vae import ConvVAE
from vae_tools.models.defaults import NOISE
from vae_tools.models.noise import corrupt, parse_noise
from vae_tools.models.registry import register_model


@register_model("denoising")
class DenoisingVAE(ConvVAE):
    def __init__(self, *args, noise: str = NOISE, **kwargs):
        """ConvVAE's parameters, and ``noise``: the corruption spec (see models/noise.py)."""
        super().__init__(*args, **kwargs)
        self.noise = noise
        self._noises = parse_noise(noise)

    def config(self) -> dict:
        return {**super().config(), "noise": self.noise}

    def training_input(self, x: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        return corrupt(x, self._noises, generator)
