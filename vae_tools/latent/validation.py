"""Judging a propagation by the labels the user gave: cross-validation and held-back labels.

These are what lets vaetools choose settings on the user's own data instead of trusting constants
tuned on one benchmark."""

from __future__ import annotations

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import KFold, StratifiedKFold

from vae_tools.latent.labels import unlabelled_mask


def without_labels(y_partial, positions) -> np.ndarray:
    """A copy of ``y_partial`` with the samples at ``positions`` marked unlabelled."""
    y = np.array(y_partial, copy=True)
    if y.dtype.kind in "iu":
        y[positions] = -1
    else:
        y = y.astype(object)
        y[positions] = None
    return y


def _agree(predicted, truth) -> np.ndarray:
    return np.asarray(predicted).astype(str) == np.asarray(truth).astype(str)


def labelled_folds(y_partial, n_folds: int = 5, seed: int = 0) -> list[np.ndarray]:
    """Positions of the labelled samples split into folds, stratified when every class has enough."""
    y = np.asarray(y_partial)
    labelled = np.flatnonzero(~unlabelled_mask(y))
    n_folds = min(n_folds, len(labelled))
    if n_folds < 2:
        return []
    classes = y[labelled].astype(str)
    _, counts = np.unique(classes, return_counts=True)
    splitter = (StratifiedKFold(n_folds, shuffle=True, random_state=seed) if counts.min() >= n_folds
                else KFold(n_folds, shuffle=True, random_state=seed))
    return [labelled[test] for _, test in splitter.split(labelled, classes)]


def cross_validated_accuracy(propagator, X, y_partial, n_folds: int = 5, seed: int = 0) -> float | None:
    """Mean accuracy on each fold of the labelled samples when that fold's labels are hidden; None
    with fewer than two labelled samples."""
    folds = labelled_folds(y_partial, n_folds, seed)
    if not folds:
        return None
    y = np.asarray(y_partial)
    correct = 0
    for fold in folds:
        fitted = clone(propagator).fit(X, without_labels(y, fold))
        correct += int(_agree(fitted.transduction_[fold], y[fold]).sum())
    return correct / sum(len(f) for f in folds)


def held_back_correct(fitted, y_partial, held: np.ndarray) -> int:
    """How many held-back labels a propagation fitted without them gets right."""
    return int(_agree(fitted.transduction_[held], np.asarray(y_partial)[held]).sum())


def held_back_true_probability(fitted, y_partial, held: np.ndarray) -> np.ndarray:
    """The probability the propagation gives the true class of each held-back label (0 for a class
    it never saw): finer than the count, which ties whenever two rounds get the same few wrong."""
    if len(held) == 0:
        return np.zeros(0)
    truth = np.asarray(y_partial)[held].astype(str)
    lookup = {c: i for i, c in enumerate(np.asarray(fitted.classes_).astype(str))}
    dist = fitted.label_distributions_[held]
    return np.array([dist[k, lookup[t]] if t in lookup else 0.0 for k, t in enumerate(truth)], dtype=np.float64)
