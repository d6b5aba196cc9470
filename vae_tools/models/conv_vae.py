"""Convolutional VAE for images of any size: strided convolutions down, transposed convolutions up."""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from vae_tools.errors import ConfigError
from vae_tools.models.defaults import ACTIVATION, HIDDEN_DIM, LATENT_DIM, LIKELIHOOD
from vae_tools.models.base import BaseVAE
from vae_tools.models.losses import bernoulli_nll, gaussian_nll
from vae_tools.models.registry import register_model

LIKELIHOODS = ("bernoulli", "gaussian")
ACTIVATIONS = {
    "relu": lambda: nn.ReLU(inplace=True),
    "leaky_relu": lambda: nn.LeakyReLU(0.2, inplace=True),
    "silu": lambda: nn.SiLU(inplace=True),
}


def default_widths(height: int, width: int) -> list[int]:
    """Enough stride-2 stages to bring the smaller side down to 4-7 pixels (at least one), widths doubling from 32."""
    stages = max(1, min(5, math.floor(math.log2(max(8, min(height, width)) / 4))))
    return [min(32 * 2**i, 256) for i in range(stages)]


@register_model("conv")
class ConvVAE(BaseVAE):
    """A VAE with a convolutional encoder and decoder.

    Images are zero-padded to a multiple of ``2 ** len(widths)`` and the reconstruction is cropped
    back, so any (H, W) works.
    """

    # bf16 measured on MNIST: test -ELBO 98.87 against 98.81 nats in fp32 (bench/results/train_speed.json), the
    # same validation -ELBO on 70k and k-means on its latents (bench/results/precision_mnist.json).
    bf16_on_cpu = True

    def __init__(
        self,
        image_shape: Sequence[int] = (1, 28, 28),
        latent_dim: int = LATENT_DIM,
        widths: Optional[Sequence[int]] = None,
        hidden_dim: int = HIDDEN_DIM,
        likelihood: str = LIKELIHOOD,
        activation: str = ACTIVATION,
    ):
        super().__init__()
        channels, height, width = (int(v) for v in image_shape)
        if likelihood not in LIKELIHOODS:
            raise ConfigError(f"unknown likelihood {likelihood!r}; use {' or '.join(LIKELIHOODS)}")
        if activation not in ACTIVATIONS:
            raise ConfigError(f"unknown activation {activation!r}; use {', '.join(ACTIVATIONS)}")
        if latent_dim < 1:
            raise ConfigError(f"latent_dim must be at least 1, got {latent_dim}")
        widths = list(widths) if widths else default_widths(height, width)
        if min(height, width) < 2 ** len(widths) // 2:
            raise ConfigError(f"images of {height}x{width} are too small for {len(widths)} downsampling stages")
        self.image_shape = (channels, height, width)
        self.latent_dim = int(latent_dim)
        self.widths = [int(w) for w in widths]
        self.hidden_dim = int(hidden_dim)
        self.likelihood = likelihood
        self.activation = activation
        act = ACTIVATIONS[activation]

        factor = 2 ** len(self.widths)
        self._padded = (math.ceil(height / factor) * factor, math.ceil(width / factor) * factor)
        self._bottom = (self.widths[-1], self._padded[0] // factor, self._padded[1] // factor)
        flat = math.prod(self._bottom)

        self.encoder = self.build_encoder(channels, act)
        self.to_mu = nn.Linear(self.hidden_dim, self.latent_dim)
        self.to_logvar = nn.Linear(self.hidden_dim, self.latent_dim)

        self.from_latent = nn.Sequential(
            nn.Linear(self.latent_dim, self.hidden_dim), act(), nn.Linear(self.hidden_dim, flat), act()
        )
        up = []
        reversed_widths = self.widths[::-1]
        for w_in, w_out in zip(reversed_widths, reversed_widths[1:] + [channels]):
            up += [nn.ConvTranspose2d(w_in, w_out, 4, stride=2, padding=1), act()]
        self.decoder = nn.Sequential(*up[:-1])  # the last layer outputs logits or means, no activation
        # One learned noise scale for the Gaussian likelihood (sigma-VAE); unused for Bernoulli.
        self.log_sigma = nn.Parameter(torch.full((), -1.0), requires_grad=likelihood == "gaussian")

    def build_encoder(self, channels: int, act) -> nn.Module:
        """Images (padded to ``self._padded``) -> (B, hidden_dim): one strided convolution per width."""
        down, c_in = [], channels
        for w in self.widths:
            down += [nn.Conv2d(c_in, w, 4, stride=2, padding=1), act()]
            c_in = w
        return nn.Sequential(*down, nn.Flatten(), nn.Linear(math.prod(self._bottom), self.hidden_dim), act())

    def config(self) -> dict:
        """Everything needed to rebuild this module (stored in a run folder's config.json)."""
        return {
            "image_shape": list(self.image_shape),
            "latent_dim": self.latent_dim,
            "widths": self.widths,
            "hidden_dim": self.hidden_dim,
            "likelihood": self.likelihood,
            "activation": self.activation,
        }

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        """The encoder's features (B, hidden_dim), before the posterior's mean and variance."""
        height, width = x.shape[2:]
        pad_h, pad_w = self._padded[0] - height, self._padded[1] - width
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
        return self.encoder(x)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.hidden(x)
        return self.to_mu(hidden), self.to_logvar(hidden).clamp(-12.0, 8.0)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        out = self.decoder(self.from_latent(z).view(-1, *self._bottom))
        _, height, width = self.image_shape
        return out[:, :, :height, :width]

    def reconstruction_nll(self, decoded: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.likelihood == "bernoulli":
            return bernoulli_nll(decoded, target)
        return gaussian_nll(decoded, self.log_sigma, target)

    def mean_image(self, decoded: torch.Tensor) -> torch.Tensor:
        """Turn decoder output into an image in [0, 1]."""
        if self.likelihood == "bernoulli":
            return torch.sigmoid(decoded)
        return decoded.clamp(0.0, 1.0)

