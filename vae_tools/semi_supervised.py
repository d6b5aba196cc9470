"""Labels for every image from a few: propagate over the latents, then sharpen the latents with the
propagated labels (self-training) and propagate again."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
from sklearn.base import clone
from torch import nn

from vae_tools.data import ImageDataset
from vae_tools.embedding import embed, latent_matrix
from vae_tools.latent.labels import unlabelled_mask
from vae_tools.latent.propagation import LabelPropagator
from vae_tools.training.label_fine_tune import fine_tune_on_labels

REFINE_ROUNDS = 2
REFINE_EPOCHS = 4  # 2 -> 4 lifted 2% MNIST from 98.31% to 98.53% on the weakest seed


@dataclass
class PropagationResult:
    propagator: LabelPropagator  # fitted on the final latents
    model: nn.Module  # the fine-tuned VAE (the input model when no refinement ran)
    latents: np.ndarray
    rounds: list = field(default_factory=list)  # per round: seconds, and accuracy when y_true was given


def propagate_labels(
    model: nn.Module,
    dataset: ImageDataset,
    y_partial,
    propagator: Optional[LabelPropagator] = None,
    refine_rounds: int = REFINE_ROUNDS,
    refine_epochs: int = REFINE_EPOCHS,
    label_weight: float = 100.0,
    device="cpu",
    seed: int = 0,
    progress: bool = True,
    y_true=None,
    latents: Optional[np.ndarray] = None,
) -> PropagationResult:
    """Round 0 propagates over the VAE's latents. Each refinement round fine-tunes a copy of the VAE
    on the ELBO plus a classifier loss on the current labels (weighted by confidence; the given
    labels count fully), re-embeds, and propagates again. Measured on all of MNIST with 1% or 2% of
    the labels this lifts accuracy from about 97% to about 98.6% (see bench/label_propagation.py). ``latents``: the
    model's embeddings of ``dataset`` when the caller already has them (round 0 then skips encoding)."""
    propagator = clone(propagator) if propagator is not None else LabelPropagator(random_state=seed)
    y_partial = np.asarray(y_partial)
    hidden = unlabelled_mask(y_partial)
    rounds = []
    started = time.perf_counter()
    if latents is None:
        latents = latent_matrix(embed(model, dataset, device=device, progress=progress))
    propagator.fit(latents, y_partial)
    rounds.append(_round_info(0, propagator, hidden, y_true, started))
    if refine_rounds > 0:
        model = copy.deepcopy(model)
    for r in range(1, refine_rounds + 1):
        started = time.perf_counter()
        codes = np.searchsorted(propagator.classes_, propagator.transduction_)
        fine_tune_on_labels(model, dataset, codes, propagator.confidence_, len(propagator.classes_),
                            epochs=refine_epochs, label_weight=label_weight, device=device, seed=seed + r,
                            progress=progress)
        latents = latent_matrix(embed(model, dataset, device=device, progress=progress))
        propagator = clone(propagator).fit(latents, y_partial)
        rounds.append(_round_info(r, propagator, hidden, y_true, started))
    return PropagationResult(propagator, model, latents, rounds)


def _round_info(index, propagator, hidden, y_true, started) -> dict:
    info = {"round": index, "seconds": round(time.perf_counter() - started, 2)}
    if y_true is not None and hidden.any():
        truth = np.asarray(y_true)[hidden]
        info["accuracy_unlabelled"] = float(np.mean(propagator.transduction_[hidden].astype(str) == truth.astype(str)))
    return info
