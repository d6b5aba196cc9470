"""The normal images an anomaly score compares with: by default the model's own training images.

A score that compares an image with other images (``knn``'s nearest codes, ``rotation+knn``'s robust
units, ``adjusted``'s complexity weight, ``latent``'s mixture) and the automatic cut need a set of
images known to be normal. Taking the scored images themselves fails whenever the anomalies are not
rare (a bad batch from a production line: the normal images become the odd ones) and gives an image
another score in every batch. The training images are normal by construction, so training keeps
what the scores need of a seeded sample of them in the run folder (``REFERENCE_FILE``, safetensors):
every scoring pass's per-image quantities and the posterior means. Loading it runs no code."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from vae_tools.anomaly.defaults import REFERENCE_IMAGES, SAMPLES, SCORING_BATCH_SIZE
from vae_tools.anomaly.score_choice import has_rotation_head
from vae_tools.anomaly.score_registry import BACKGROUND, LIKELIHOOD, PART_COLUMNS, ROTATION
from vae_tools.anomaly.scores import score_parts
from vae_tools.atomic import atomic_path
from vae_tools.errors import RunFolderError
from vae_tools.run_folder import REFERENCE_FILE, model_folder
_LATENTS = "latents"


@dataclass(frozen=True)
class AnomalyReference:
    """What the scores need of a set of normal images: the scoring pass's columns (one row per image)
    and the images' posterior means. ``described``: the images, in words ("2,000 of the 9,000
    training images")."""

    parts: pd.DataFrame
    latents: np.ndarray
    described: str
    samples: int = SAMPLES
    seed: int = 0  # of the z draws: images scored against the reference take the same ones

    def __len__(self) -> int:
        return len(self.latents)


def every_part(model) -> tuple:
    """All the per-image quantities this model's scores can ask for."""
    return (LIKELIHOOD, BACKGROUND, ROTATION) if has_rotation_head(model) else (LIKELIHOOD, BACKGROUND)


def reference_of(model, dataset, *, max_images: int = REFERENCE_IMAGES, samples: int = SAMPLES, seed: int = 0,
                 device: torch.device | str = "cpu", batch_size: int = SCORING_BATCH_SIZE,
                 described: str = "images", progress: bool = False) -> AnomalyReference:
    """The reference made of a seeded sample of up to ``max_images`` of ``dataset`` (all when fewer):
    enough for a stable cut and dense neighbours, and a bounded cost at the end of a long training."""
    chosen = np.arange(len(dataset))
    if len(dataset) > max_images:
        chosen = np.sort(np.random.default_rng(seed).choice(len(dataset), max_images, replace=False))
    parts, latents = score_parts(model, dataset.subset(chosen), samples, batch_size, device, seed, progress,
                                 needs=every_part(model))
    return AnomalyReference(parts, latents.astype(np.float32),
                            f"{len(chosen):,} of the {len(dataset):,} {described}" if len(chosen) < len(dataset)
                            else f"the {len(dataset):,} {described}", samples, seed)


def save_reference(run_dir: str | Path, reference: AnomalyReference) -> Path:
    path = Path(run_dir) / REFERENCE_FILE
    tensors = {_LATENTS: torch.from_numpy(np.ascontiguousarray(reference.latents, dtype=np.float32))}
    tensors.update({f"part.{name}": torch.from_numpy(np.ascontiguousarray(reference.parts[name], dtype=np.float64))
                    for name in reference.parts.columns})
    metadata = {"described": reference.described, "samples": str(reference.samples), "seed": str(reference.seed),
                "columns": json.dumps(list(reference.parts.columns))}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return path


def load_reference(run_dir: str | Path, latent_dim: int) -> Optional[AnomalyReference]:
    """The run folder's reference, or None for a folder trained before vaetools kept one."""
    path = model_folder(run_dir) / REFERENCE_FILE
    if not path.exists():
        return None
    try:
        with safe_open(str(path), "pt") as handle:
            metadata = handle.metadata() or {}
            columns = json.loads(metadata.get("columns", "[]"))
            latents = handle.get_tensor(_LATENTS).numpy()
            parts = pd.DataFrame({name: handle.get_tensor(f"part.{name}").numpy() for name in columns})
        samples, seed = int(metadata.get("samples", SAMPLES)), int(metadata.get("seed", 0))
    except (OSError, SafetensorError, ValueError, KeyError, TypeError) as exc:
        raise RunFolderError(f"{path}: not a readable anomaly reference ({exc}); train the model again") from None
    known = {column for part in PART_COLUMNS.values() for column in part}
    if latents.ndim != 2 or latents.shape[1] != latent_dim or len(latents) < 2 or set(columns) - known \
            or any(len(parts[name]) != len(latents) for name in columns) or not np.isfinite(latents).all():
        raise RunFolderError(f"{path}: its codes do not fit this model ({latent_dim} latent dimensions); "
                             "train the model again")
    return AnomalyReference(parts, latents, metadata.get("described", "the training images"), samples, seed)
