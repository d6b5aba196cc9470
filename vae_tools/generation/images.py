"""The generative side on a trained model: decode codes into images, sample, reconstruct, interpolate,
traverse and move images along attribute vectors. Images come back as NCHW float32 numpy arrays in
[0, 1]; images going in may have any layout and pixel type `load_dataset` takes (they are brought to the
model's size and channels the same way)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch
from torch import nn

from vae_tools.data import ImageDataset
from vae_tools.data.arrays import ArrayReader
from vae_tools.errors import DataError
from vae_tools.models.base import as_module
from vae_tools.models.inference import encode_rows, likelihood_terms
from vae_tools.generation.latent_paths import attribute_vector, interpolation_codes, traversal_codes
from vae_tools.generation.samplers import GaussianMixtureSampler, PriorSampler

BATCH = 512


def _module(model) -> nn.Module:
    return as_module(model)


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.inference_mode()
def decode(model, z: torch.Tensor, *, batch_size: int = BATCH) -> np.ndarray:
    """Mean images of the codes ``z`` (n, d)."""
    model = _module(model).eval()
    z = torch.as_tensor(z, dtype=torch.float32)
    parts = [model.mean_image(model.decode(z[s:s + batch_size].to(_device(model)))).float().cpu()
             for s in range(0, len(z), batch_size)]
    return torch.cat(parts).numpy() if parts else np.zeros((0, *model.image_shape), np.float32)


def as_model_images(model, images) -> ImageDataset:
    """``images`` (N, ...) in any array layout a data source takes, as the model's input."""
    module = _module(model)
    array = np.asarray(images)
    if array.ndim < 2 or not len(array):
        raise DataError(f"expected an array of images, got shape {array.shape}")
    return ImageDataset(ArrayReader(array, "images"), [str(i) for i in range(len(array))], None,
                        module.image_shape[0], tuple(module.image_shape[1:]))


@torch.inference_mode()
def encode(model, images, *, batch_size: int = BATCH) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior means and log-variances (on the CPU) of ``images``."""
    model = _module(model).eval()
    dataset = as_model_images(model, images)
    codes = encode_rows(model, dataset, np.arange(len(dataset)), batch_size, _device(model))
    return codes[:, :model.latent_dim], codes[:, model.latent_dim:2 * model.latent_dim]


def reconstruct(model, images, *, batch_size: int = BATCH) -> np.ndarray:
    """Each image decoded from its posterior mean."""
    return decode(model, encode(model, images, batch_size=batch_size)[0], batch_size=batch_size)


@dataclass
class Samples:
    images: np.ndarray  # (n, C, H, W)
    latents: torch.Tensor  # (n, d)


def sample(model, n: int, *, sampler: Optional[GaussianMixtureSampler] = None, temperature: float = 1.0,
           seed: int = 0) -> Samples:
    """``n`` new images: codes from ``sampler`` (default: the prior N(0, I)) decoded to mean images."""
    module = _module(model)
    sampler = sampler or PriorSampler(module.latent_dim)
    if sampler.latent_dim != module.latent_dim:
        raise ValueError(f"the sampler draws {sampler.latent_dim}-d codes but the model's latent space has "
                         f"{module.latent_dim} dimensions")
    z = sampler.sample(n, temperature=temperature, seed=seed)
    return Samples(decode(module, z), z)


@dataclass
class Interpolation:
    images: np.ndarray  # (steps, C, H, W)
    latents: torch.Tensor  # (steps, d)
    t: np.ndarray  # (steps,) from 0 (first image) to 1 (second)


def interpolate(model, image_a, image_b, *, steps: int = 10, method: str = "slerp") -> Interpolation:
    """Decoded codes on the path between two images' posterior means (``method``: slerp or linear)."""
    mu, _ = encode(model, np.stack([np.asarray(image_a), np.asarray(image_b)]))  # one layout for both
    codes = interpolation_codes(mu[0], mu[1], steps, method)
    return Interpolation(decode(model, codes), codes, np.linspace(0, 1, steps))


@dataclass
class Traversal:
    images: np.ndarray  # (len(dims), steps, C, H, W)
    latents: torch.Tensor  # (len(dims), steps, d)
    dims: list
    values: np.ndarray  # (steps,)


def traverse(model, *, dims: Optional[Sequence[int]] = None, steps: int = 11, span: float = 3.0,
             base: Optional[torch.Tensor] = None) -> Traversal:
    """Row r: ``base`` (default the prior's mean, 0) with dimension dims[r] swept over
    [-span, span] prior standard deviations; every other coordinate stays fixed."""
    module = _module(model)
    d = module.latent_dim
    dims = list(range(d)) if dims is None else [int(j) for j in dims]
    bad = [j for j in dims if not 0 <= j < d]
    if bad:
        raise ValueError(f"latent dimension {bad[0]} does not exist; the model has dimensions 0 to {d - 1}")
    base = torch.zeros(d) if base is None else torch.as_tensor(base, dtype=torch.float32).reshape(d)
    values = np.linspace(-span, span, steps)
    codes = traversal_codes(base, dims, values)
    images = decode(module, codes.reshape(-1, d)).reshape(len(dims), steps, *module.image_shape)
    return Traversal(images, codes, dims, values)


def manifold_grid(model, *, steps: int = 15, coverage: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """For a 2-d latent space: the classic grid (Kingma & Welling, fig. 4). Codes sit at the normal
    quantiles of an even grid over the central ``coverage`` of the prior's mass, so each cell holds
    an equal share of it. Returns images (steps, steps, C, H, W) and the grid's values."""
    from scipy.stats import norm

    module = _module(model)
    if module.latent_dim != 2:
        raise ValueError(f"the manifold grid needs a 2-d latent space; this model's has {module.latent_dim}")
    tail = (1 - coverage) / 2
    values = norm.ppf(np.linspace(tail, 1 - tail, steps))
    rows, columns = np.meshgrid(values[::-1], values, indexing="ij")  # up the picture = up dimension 1
    codes = torch.from_numpy(np.stack([columns.ravel(), rows.ravel()], axis=1).astype(np.float32))
    return decode(module, codes).reshape(steps, steps, *module.image_shape), values


@dataclass
class AttributeShift:
    images: np.ndarray  # (n_images, steps, C, H, W); step 0 is the image's own reconstruction
    vector: torch.Tensor  # (d,)
    strengths: np.ndarray  # (steps,)
    counts: dict  # images per label used for the two means


def attribute_shift(model, images, latents, labels, source, target, *, steps: int = 6,
                    strength: float = 1.0) -> AttributeShift:
    """Move ``images`` along the attribute vector (mean code of ``target`` minus that of ``source``,
    measured on ``latents``/``labels``), from 0 to ``strength`` times the vector."""
    vector, counts = attribute_vector(latents, labels, source, target)
    mu, _ = encode(model, images)
    strengths = np.linspace(0, strength, steps)
    codes = mu[:, None, :] + torch.from_numpy(strengths.astype(np.float32))[None, :, None] * vector
    decoded = decode(model, codes.reshape(-1, mu.shape[1]))
    return AttributeShift(decoded.reshape(len(mu), steps, *decoded.shape[1:]), vector, strengths, counts)


@torch.inference_mode()
def negative_elbo(model, images, *, samples: int = 8, seed: int = 0, batch_size: int = BATCH) -> np.ndarray:
    """Each image's negative ELBO under the model (nats; lower: the model finds it more likely),
    averaged over ``samples`` draws of z seeded with ``seed``, the same draws for every image."""
    module = _module(model).eval()
    dataset = as_model_images(module, images)
    out = []
    for _, x in dataset.iter_batches(batch_size):
        x = x.to(_device(module))
        mu, logvar = module.encode(x)
        out.append(likelihood_terms(module, x, mu, logvar, samples, torch.Generator().manual_seed(seed))["elbo"].cpu())
    return torch.cat(out).double().numpy()
