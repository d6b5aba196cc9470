"""Denoising VAE: the convolutional VAE trained on corrupted inputs against the clean images."""

from __future__ import annotations

from typing import Optional, Sequence

import torch

from vae_tools.models.conv_vae import ConvVAE
from vae_tools.models.defaults import ACTIVATION, HIDDEN_DIM, LATENT_DIM, LIKELIHOOD, NOISE
from vae_tools.models.noise import corrupt, parse_noise
from vae_tools.models.registry import register_model


@register_model("denoising")
class DenoisingVAE(ConvVAE):
    def __init__(
        self,
        image_shape: Sequence[int] = (1, 28, 28),
        latent_dim: int = LATENT_DIM,
        widths: Optional[Sequence[int]] = None,
        hidden_dim: int = HIDDEN_DIM,
        likelihood: str = LIKELIHOOD,
        activation: str = ACTIVATION,
        noise: str = NOISE,
    ):
        super().__init__(image_shape, latent_dim, widths, hidden_dim, likelihood, activation)
        self.noise = noise
        self._noises = parse_noise(noise)

    def config(self) -> dict:
        return {**super().config(), "noise": self.noise}

    def training_input(self, x: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        return corrupt(x, self._noises, generator)
