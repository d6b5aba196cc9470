"""The ELBO's two terms, per sample, in nats."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) summed over latent dimensions, shape (B,)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)


def bernoulli_nll(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """-log p(x | z) under independent Bernoulli pixels (targets may be grey levels), shape (B,)."""
    nll = F.binary_cross_entropy_with_logits(logits.float(), target.float(), reduction="none")
    return nll.flatten(1).sum(dim=1)


def gaussian_nll(mean: torch.Tensor, log_sigma: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """-log p(x | z) under independent Gaussian pixels with one shared, learned scale, shape (B,)."""
    sq = ((target.float() - mean.float()) * torch.exp(-log_sigma)).pow(2)
    per_pixel = 0.5 * sq + log_sigma + 0.5 * math.log(2 * math.pi)
    return per_pixel.flatten(1).sum(dim=1)
