"""What every vaetools model is: the contract the trainer, the anomaly scores, embedding, denoising
and generation rely on, and nothing more (as anomalib keeps a model apart from its loop, and pythae
gives every model one base class)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from vae_tools.models.defaults import MIN_STEPS, PREFERRED_FEATURES
from vae_tools.models.losses import kl_to_standard_normal


@dataclass
class VAEOutput:
    decoded: torch.Tensor  # what ``decode`` returns: logits (bernoulli) or means (gaussian), the input's shape
    mu: torch.Tensor
    logvar: torch.Tensor


class BaseVAE(nn.Module, ABC):
    """A VAE with a diagonal Gaussian posterior and a standard normal prior.

    A subclass sets ``image_shape`` (C, H, W), ``latent_dim`` and ``likelihood`` in its constructor,
    implements the five abstract methods, and is registered by name with ``@register_model``. The
    constructor's keyword arguments are exactly what ``config()`` returns, so a run folder can rebuild it.
    """

    registry_name: str  # set by @register_model
    stops_early = True  # whether the validation ELBO says when training has done its work
    cpu_minutes = None  # the training budget on a CPU by default (vae_tools/training/budget.py); None: no limit
    min_steps = MIN_STEPS  # the fewest optimisation steps of a default-length run (training_length)
    bf16_on_cpu = False  # whether its quality in bf16 is measured, so it may train so (training/precision.py)
    # The feature set that clustering keeps and label propagation prefers (its cross-validation can
    # overrule it), and why: which features carry an image's kind follows from what the codes hold.
    preferred_features = (PREFERRED_FEATURES, "the codes of a pixel-likelihood model hold an image's style, the pixels "
                        "its shapes at each place, and their union clustered within 0.01 of the best set on MNIST, "
                        "Kuzushiji-MNIST and the 8x8 digits (bench/cluster_features.py)")
    image_shape: tuple
    latent_dim: int
    likelihood: str

    @abstractmethod
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior means and log-variances, each (B, latent_dim), of images (B, C, H, W) in [0, 1]."""

    @abstractmethod
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The pixel distribution's parameters for codes (B, latent_dim): (B, C, H, W)."""

    @abstractmethod
    def reconstruction_nll(self, decoded: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """-log p(target | z) in nats per image, (B,), for ``decoded = decode(z)``."""

    @abstractmethod
    def mean_image(self, decoded: torch.Tensor) -> torch.Tensor:
        """The mean image in [0, 1] of the distribution ``decoded``."""

    @abstractmethod
    def config(self) -> dict:
        """The constructor's keyword arguments (stored in a run folder's config.json)."""

    def training_input(self, x: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """What the encoder sees during training for the clean batch ``x`` (a denoising model corrupts it)."""
        return x

    def labelled_view(self, x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
        """A random view of ``x`` that keeps each image's label, for training on labels: shifted by up
        to ``max_shift`` pixels (a stroke flipped or cropped may be another symbol)."""
        from vae_tools.models.augment import random_shift

        return random_shift(self.training_input(x), max_shift, generator)

    def training_terms(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """What one training step minimises for the clean batch ``x``: the per-image reconstruction
        NLL and KL, and one scalar of the model's own (a consistency term, say; zero by default)."""
        recon, kl = self.loss_terms(self.training_input(x), x)
        return recon, kl, recon.new_zeros(())

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)

    def forward(self, x: torch.Tensor, sample: bool = True) -> VAEOutput:
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar) if sample else mu
        return VAEOutput(self.decode(z), mu, logvar)

    def loss_terms(self, x_in: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-image reconstruction NLL of ``target`` and KL (nats) for one reparameterised sample given
        ``x_in``: the per-batch loss the one training loop minimises (ELBO = -(recon + KL))."""
        return self.output_loss_terms(self(x_in), target)

    def output_loss_terms(self, out: VAEOutput, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`loss_terms` of a forward pass already made (for objectives that also use its mu)."""
        return self.reconstruction_nll(out.decoded, target), kl_to_standard_normal(out.mu.float(), out.logvar.float())

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        mu, _ = self.encode(x)
        return self.mean_image(self.decode(mu))


def as_module(model) -> BaseVAE:
    """A VAE module, given it or a fitted estimator that holds one (VAEEmbedder, VAEAnomalyDetector)."""
    if isinstance(model, nn.Module):
        return model
    if isinstance(getattr(model, "module_", None), nn.Module):
        return model.module_
    raise TypeError(f"expected a trained VAE module or a fitted vaetools estimator, got {type(model).__name__}")
