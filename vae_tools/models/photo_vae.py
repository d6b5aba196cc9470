"""A VAE for photographs: a residual encoder trained on the ELBO and, beside it, to give two random
views of an image (crops, flips, colour changes) the same code (SimCLR's contrastive term on a
projection of the posterior mean). A pixel likelihood alone spends the code on colour, brightness
and layout; the views make those the things the code must not depend on, so images of one kind of
object end up near each other, and every latent step (propagation, clusters, maps, anomalies) uses that.

A third term has the encoder tell which way up an image was turned (Gidaris et al. 2018's rotation
prediction): to do it the encoder must know what the objects of its training images look like the
right way up, and how sure it stays on a new image is the `rotation` anomaly score (Golan & El-Yaniv
2018; Hendrycks et al. 2019), the one that separates one kind of photo from the rest best here."""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from vae_tools.errors import ConfigError
from vae_tools.models.augment import PhotoViews, nt_xent
from vae_tools.models.conv_vae import ConvVAE
from vae_tools.models.defaults import HIDDEN_DIM, PHOTO_CPU_MINUTES, PHOTO_LATENT_DIM, PHOTO_MIN_STEPS
from vae_tools.models.losses import kl_to_standard_normal
from vae_tools.models.registry import register_model

CONSISTENCY = 1.0
# The rotation term's weight, per pixel as the consistency term's. At 1 the pixel likelihood's pull on
# the encoder left the head near chance on 2 of 4 CIFAR-10 classes after 10 epochs; at 4 it learned
# on all 4 (birds 71% of chance's -log p, against 88%), and the knn score's mean AUROC held (0.679
# against 0.670).
ROTATION = 4.0
TURN_VIEW_MIN_SCALE = 0.6
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
    global average pool), a projection head used only for the consistency term, and a head that
    tells the turns of an image apart."""

    stops_early = False  # the validation ELBO does not measure what the consistency term teaches
    cpu_minutes = PHOTO_CPU_MINUTES
    min_steps = PHOTO_MIN_STEPS
    bf16_on_cpu = False  # its consistency and rotation terms are not measured in bf16
    # On 10,000 CIFAR-10 photos the latents alone clustered 0.33-0.38 against 0.29 with the pixels, and
    # propagated 2% labels to 35.8% / 41.2% against 32.8% / 39.8% (models of 43 and 143 epochs).
    preferred_features = ("latents", "the photo model's codes were trained to give crops, flips and colour changes of "
                          "an image one code, so they leave out the colour and layout that a photo's pixels are mostly "
                          "made of, which would group the photos by those")
    saved_before = {"rotation": 0.0}  # run folders saved before the rotation term were trained without it

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
        rotation: float = ROTATION,
    ):
        if likelihood != "gaussian":
            raise ConfigError("the photo model has a Gaussian likelihood (continuous tones); use the conv model "
                              "for a Bernoulli one")
        if not (math.isfinite(consistency) and consistency >= 0) or not 0 < temperature <= 10:
            raise ConfigError("consistency must be a finite number >= 0 and temperature in (0, 10]")
        if not (math.isfinite(rotation) and rotation >= 0):
            raise ConfigError("rotation must be a finite number >= 0")
        height, width = (int(v) for v in image_shape[1:])
        super().__init__(image_shape, latent_dim, widths or photo_widths(height, width), hidden_dim, likelihood,
                         activation)
        self.consistency, self.temperature, self.rotation = float(consistency), float(temperature), float(rotation)
        self.views = PhotoViews()
        # Which way up a small crop of sky or fur is can be anyone's guess: the turns are told apart
        # on mild views (most of the image, mirrored or not, colours as they are).
        self.turn_views = PhotoViews(min_scale=TURN_VIEW_MIN_SCALE, jitter=0.0, grey_probability=0.0)
        self.head = nn.Sequential(nn.Linear(self.latent_dim, self.hidden_dim), nn.ReLU(inplace=True),
                                  nn.Linear(self.hidden_dim, PROJECTION_DIM))
        # Quarter turns keep a square image's shape; a turned oblong would give itself away by its
        # shape, so it is only ever turned upside down.
        self.turns = (0, 1, 2, 3) if height == width else (0, 2)
        self.rotation_head = nn.Linear(self.hidden_dim, len(self.turns)) if self.rotation > 0 else None

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
        return {**super().config(), "consistency": self.consistency, "temperature": self.temperature,
                "rotation": self.rotation}

    def labelled_view(self, x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
        """The consistency term's views (crops, flips, colour): FixMatch's strong augmentation, for
        which the propagated labels play the part of its pseudo-labels."""
        # A generator draws only on its own device: on a GPU the views draw from the global one.
        return self.views(x, generator if generator.device == x.device else None)

    def turned(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Every image of ``x`` in each of ``turns`` (one block per turn) and the turn's index for each."""
        images = torch.cat([torch.rot90(x, k, (2, 3)) for k in self.turns])
        return images, torch.arange(len(self.turns), device=x.device).repeat_interleave(len(x))

    def rotation_nll(self, x: torch.Tensor) -> torch.Tensor:
        """Per image, the mean over its turns of -log p(the turn | the turned image): low where the
        encoder knows which way up the image is, high on images unlike its training images."""
        if self.rotation_head is None:
            raise ConfigError("this photo model was trained without the rotation term (rotation=0)")
        images, turn = self.turned(x)
        logits = self.rotation_head(self.hidden(images)).float()
        nll = F.cross_entropy(logits, turn, reduction="none")
        return nll.view(len(self.turns), len(x)).mean(0)

    def training_terms(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The ELBO's terms on one random view of each image, and the consistency term between it
        and a second view: ``consistency`` times the contrastive loss per pixel of the image, so that
        its weight against the ELBO (a sum over pixels) does not change with the image size."""
        if self.consistency == 0:
            return (*self.loss_terms(x, x), self._rotation_term(x))
        views = self.views(torch.cat([x, x]))
        mu, logvar = self.encode(views)
        first = views[: len(x)]
        (mu1, mu2), logvar1 = mu.chunk(2), logvar[: len(x)]
        decoded = self.decode(self.reparameterize(mu1, logvar1))
        recon = self.reconstruction_nll(decoded, first)
        kl = kl_to_standard_normal(mu1.float(), logvar1.float())
        extra = self.consistency * math.prod(self.image_shape) * nt_xent(self.head(mu1), self.head(mu2),
                                                                          self.temperature)
        # Half the batch is turned: its share of the step's time stays small.
        return recon, kl, extra + self._rotation_term(self.turn_views(x[: max(1, len(x) // 2)]))

    def _rotation_term(self, views: torch.Tensor) -> torch.Tensor:
        """The turn prediction's cross-entropy on the views, each block of them turned one way: one
        more encoder pass per view rather than one per turn. ``rotation`` times it per pixel."""
        if self.rotation_head is None:
            return views.new_zeros(())
        blocks = torch.arange(len(views), device=views.device) * len(self.turns) // len(views)
        images = torch.cat([torch.rot90(views[blocks == i], k, (2, 3)) for i, k in enumerate(self.turns)])
        logits = self.rotation_head(self.hidden(images)).float()
        return self.rotation * math.prod(self.image_shape) * F.cross_entropy(logits, blocks)
