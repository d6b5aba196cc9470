"""A VAE for photographs: a residual encoder trained on the ELBO and, beside it, to give two random
views of an image (crops, flips, colour changes) the same code (SimCLR's contrastive term on a
projection of the posterior mean). A pixel likelihood alone spends the code on colour, brightness
and layout; the views make those the things the code must not depend on, so images of one kind of
object end up near each other, and every latent step (propagation, clusters, maps, anomalies) uses that."""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from vae_tools.errors import ConfigError
from vae_tools.models.augment import PhotoViews, nt_xent
from vae_tools.models.conv_vae import ConvVAE
from vae_tools.models.defaults import HIDDEN_DIM, PHOTO_LATENT_DIM
from vae_tools.models.losses import kl_to_standard_normal
from vae_tools.models.registry import register_model

CONSISTENCY = 1.0
TEMPERATURE = 0.2  # SimCLR's best range for small batches (0.1-0.5)
PROJECTION_DIM = 64


class ResidualBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.skip = nn.Identity() if stride == 1 and c_in == c_out else nn.Sequential(
            nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        return F.relu(self.bn2(self.conv2(out)) + self.skip(x), inplace=True)


def photo_widths(height: int, width: int) -> list[int]:
    """A stage per halving down to about 4-7 pixels, widths doubling from 32 (three for 32x32)."""
    stages = max(1, min(5, math.floor(math.log2(max(8, min(height, width)) / 8)) + 1))
    return [min(32 * 2**i, 256) for i in range(stages)]


@register_model("photo")
class PhotoVAE(ConvVAE):
    """The conv model's decoder and Gaussian likelihood with a learned scale, a residual encoder
    (its stem halves the image, then one block per width, the later ones halving again, then a
    global average pool), and a projection head used only for the consistency term."""

    stops_early = False  # the validation ELBO does not measure what the consistency term teaches

    def __init__(
        self,
        image_shape: Sequence[int] = (3, 32, 32),
        latent_dim: int = PHOTO_LATENT_DIM,
        widths: Optional[Sequence[int]] = None,
        hidden_dim: int = HIDDEN_DIM,
        likelihood: str = "gaussian",
        activation: str = "relu",
        consistency: float = CONSISTENCY,
        temperature: float = TEMPERATURE,
    ):
        if likelihood != "gaussian":
            raise ConfigError("the photo model has a Gaussian likelihood (continuous tones); use the conv model "
                              "for a Bernoulli one")
        if not (math.isfinite(consistency) and consistency >= 0) or not 0 < temperature <= 10:
            raise ConfigError("consistency must be a finite number >= 0 and temperature in (0, 10]")
        height, width = (int(v) for v in image_shape[1:])
        super().__init__(image_shape, latent_dim, widths or photo_widths(height, width), hidden_dim, likelihood,
                         activation)
        self.consistency, self.temperature = float(consistency), float(temperature)
        self.views = PhotoViews()
        self.head = nn.Sequential(nn.Linear(self.latent_dim, self.hidden_dim), nn.ReLU(inplace=True),
                                  nn.Linear(self.hidden_dim, PROJECTION_DIM))

    def build_encoder(self, channels: int, act) -> nn.Module:
        # The stem halves the image at once: on a CPU a full-size stage would cost most of the time.
        blocks, c_in = [nn.Conv2d(channels, self.widths[0], 3, stride=2, padding=1, bias=False),
                        nn.BatchNorm2d(self.widths[0]), nn.ReLU(inplace=True)], self.widths[0]
        for i, w in enumerate(self.widths):
            blocks.append(ResidualBlock(c_in, w, stride=1 if i == 0 else 2))
            c_in = w
        return nn.Sequential(*blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, self.hidden_dim),
                             nn.ReLU(inplace=True))

    def config(self) -> dict:
        return {**super().config(), "consistency": self.consistency, "temperature": self.temperature}

    def training_terms(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The ELBO's terms on one random view of each image, and the consistency term between it
        and a second view: ``consistency`` times the contrastive loss per pixel of the image, so that
        its weight against the ELBO (a sum over pixels) does not change with the image size."""
        if self.consistency == 0:
            return (*self.loss_terms(x, x), x.new_zeros(()))
        views = self.views(torch.cat([x, x]))
        mu, logvar = self.encode(views)
        first = views[: len(x)]
        (mu1, mu2), logvar1 = mu.chunk(2), logvar[: len(x)]
        decoded = self.decode(self.reparameterize(mu1, logvar1))
        recon = self.reconstruction_nll(decoded, first)
        kl = kl_to_standard_normal(mu1.float(), logvar1.float())
        extra = self.consistency * math.prod(self.image_shape) * nt_xent(self.head(mu1), self.head(mu2),
                                                                          self.temperature)
        return recon, kl, extra
