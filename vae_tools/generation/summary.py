"""What a run folder remembers about its training latents: each dimension's KL (which dimensions are
active) and a Gaussian mixture of the codes (for sampling), in latent_summary.safetensors."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from vae_tools.atomic import atomic_path
from vae_tools.errors import DataError, RunFolderError
from vae_tools.run_folder import SUMMARY_FILE
from vae_tools.generation.latent_paths import kl_per_dimension
from vae_tools.generation.samplers import MAX_FIT_SAMPLES, GaussianMixtureSampler
from vae_tools.models.defaults import INFERENCE_BATCH_SIZE
from vae_tools.models.inference import encode_rows

ACTIVE_KL = 0.01  # nats: below this a dimension carries (almost) nothing about the image


@dataclass
class LatentSummary:
    kl_per_dim: np.ndarray  # (d,) mean KL of each dimension, nats
    mixture: GaussianMixtureSampler
    n_images: int  # images encoded

    def dims_by_activity(self) -> list:
        """Dimensions from the most to the least informative."""
        return [int(j) for j in np.argsort(-self.kl_per_dim, kind="stable")]

    def active_dims(self) -> list:
        return [j for j in self.dims_by_activity() if self.kl_per_dim[j] >= ACTIVE_KL]


@torch.inference_mode()
def summarise_latents(model, dataset, *, max_images: int = MAX_FIT_SAMPLES, batch_size: int = INFERENCE_BATCH_SIZE,
                      seed: int = 0) -> LatentSummary:
    """Encode (up to ``max_images`` of) ``dataset`` and summarise its codes."""
    rng = np.random.default_rng(seed)
    positions = np.arange(len(dataset))
    if len(positions) > max_images:
        positions = np.sort(rng.choice(positions, max_images, replace=False))
    codes = encode_rows(model.eval(), dataset, positions, batch_size, next(model.parameters()).device)
    mu, logvar = codes[:, :model.latent_dim], codes[:, model.latent_dim:2 * model.latent_dim]
    mixture = GaussianMixtureSampler(random_state=seed).fit(mu.numpy())
    return LatentSummary(kl_per_dimension(mu, logvar).numpy(), mixture, len(positions))


def save_latent_summary(run_dir: str | Path, summary: LatentSummary) -> Path:
    path = Path(run_dir) / SUMMARY_FILE
    tensors = {"kl_per_dim": torch.from_numpy(np.asarray(summary.kl_per_dim, dtype=np.float64)),
               **summary.mixture.to_tensors()}
    metadata = {"n_images": str(summary.n_images), "bic": json.dumps(getattr(summary.mixture, "bic_", {}))}
    with atomic_path(path) as tmp:
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata)
    return path


def load_latent_summary(run_dir: str | Path, latent_dim: Optional[int] = None) -> Optional[LatentSummary]:
    """The run folder's summary, or None for a folder written before vaetools kept one; with
    ``latent_dim``, checked against the model's latent size."""
    from vae_tools.run_folder import model_folder

    path = model_folder(run_dir) / SUMMARY_FILE
    if not path.exists():
        return None
    try:
        tensors = load_file(str(path))
        with safe_open(str(path), "pt") as handle:
            metadata = handle.metadata() or {}
        n_images = int(metadata.get("n_images", 0))
        mixture = GaussianMixtureSampler.from_tensors(tensors, str(path))
        kl = tensors["kl_per_dim"].double().numpy()
        mixture.bic_ = {int(k): float(v) for k, v in json.loads(metadata.get("bic", "{}")).items()}
    except (SafetensorError, OSError, ValueError, KeyError, DataError) as exc:
        raise RunFolderError(f"{path}: unreadable latent summary ({exc}); delete it to go on without it") from None
    expected = latent_dim or mixture.latent_dim
    if kl.shape != (expected,) or mixture.latent_dim != expected or not np.isfinite(kl).all():
        raise RunFolderError(f"{path}: does not match the model's {expected}-d latent space; delete it to go on")
    return LatentSummary(kl, mixture, n_images)
