"""Walks through latent space: straight and spherical interpolation, traversals along one
dimension, and attribute vectors (the difference of two labels' mean codes)."""

from __future__ import annotations

import numpy as np
import torch

from vae_tools.errors import DataError

NEAR_PARALLEL = 1e-6


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Codes on the segment from ``a`` to ``b`` (both (d,)), one per value of ``t`` (steps,)."""
    t = t[:, None].to(a.dtype)
    return (1 - t) * a + t * b


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation (White 2016): the path keeps the norm typical of Gaussian codes, where a
    straight line would cut through the low-norm middle the decoder rarely saw. Falls back to ``lerp``
    for (nearly) parallel codes."""
    a64, b64 = a.double(), b.double()
    norms = a64.norm() * b64.norm()
    if norms < NEAR_PARALLEL:
        return lerp(a, b, t)
    omega = torch.arccos(torch.clamp(a64 @ b64 / norms, -1.0, 1.0))
    if torch.sin(omega).abs() < NEAR_PARALLEL:
        return lerp(a, b, t)
    t = t[:, None].double()
    path = (torch.sin((1 - t) * omega) * a64 + torch.sin(t * omega) * b64) / torch.sin(omega)
    return path.to(a.dtype)


INTERPOLATIONS = {"slerp": slerp, "linear": lerp}


def interpolation_codes(a: torch.Tensor, b: torch.Tensor, steps: int, method: str = "slerp") -> torch.Tensor:
    if method not in INTERPOLATIONS:
        raise ValueError(f"unknown interpolation {method!r}; use {' or '.join(INTERPOLATIONS)}")
    if steps < 2:
        raise ValueError(f"an interpolation needs at least 2 steps, got {steps}")
    return INTERPOLATIONS[method](a, b, torch.linspace(0, 1, steps))


def traversal_codes(base: torch.Tensor, dims, values) -> torch.Tensor:
    """(len(dims), len(values), d): row r is ``base`` with dimension dims[r] set to each value."""
    values = torch.as_tensor(values, dtype=base.dtype)
    codes = base.repeat(len(dims), len(values), 1)
    for row, dim in enumerate(dims):
        codes[row, :, dim] = values
    return codes


def kl_per_dimension(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Mean KL(q(z_j|x) || N(0, 1)) of each latent dimension over the rows, in nats. A dimension the
    encoder ignores sits near 0 (posterior collapse); the active ones carry the information."""
    return (0.5 * (mu.double().pow(2) + logvar.double().exp() - 1 - logvar.double())).mean(0)


def attribute_vector(latents, labels, source, target) -> tuple[torch.Tensor, dict]:
    """Mean code of the ``target`` label minus that of ``source``; labels compare as text."""
    latents = torch.from_numpy(np.array(latents, dtype=np.float32))
    labels = np.asarray(labels).astype(str)
    counts = {}
    means = []
    for name in (source, target):
        chosen = labels == str(name)
        counts[str(name)] = int(chosen.sum())
        if not chosen.any():
            known = ", ".join(sorted(set(labels.tolist()))[:20])
            raise DataError(f"no image has the label {str(name)!r} (labels: {known})")
        means.append(latents[torch.from_numpy(chosen)].mean(0))
    return means[1] - means[0], counts
