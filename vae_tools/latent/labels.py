"""Labelled/unlabelled bookkeeping: which samples carry a label, and hiding labels for evaluation."""

from __future__ import annotations

import numpy as np
import pandas as pd

from vae_tools.errors import DataError


def unlabelled_mask(y) -> np.ndarray:
    """True where ``y`` marks a sample as unlabelled: -1 in an integer array (scikit-learn's
    convention), None/NaN/empty string in any other array."""
    y = np.asarray(y)
    if y.dtype.kind in "iu":
        return y == -1
    if y.dtype.kind == "f":
        return np.isnan(y) | (y == -1)
    missing = pd.isna(y)
    return missing | np.array([isinstance(v, str) and v == "" for v in y], dtype=bool)


def hide_labels(y, fraction: float, seed: int = 0, stratify: bool = False) -> np.ndarray:
    """Boolean mask of the samples whose label is kept: a random ``fraction`` of ``y`` (per class when
    ``stratify``, at least one per class). The rest play the unlabelled part in an evaluation."""
    if not 0 < fraction < 1:
        raise DataError(f"the labelled fraction must lie strictly between 0 and 1, got {fraction}")
    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    keep = np.zeros(len(y), dtype=bool)
    if stratify:
        for value in pd.unique(y):
            members = np.flatnonzero(y == value)
            count = max(1, int(round(fraction * len(members))))
            keep[rng.choice(members, size=count, replace=False)] = True
    else:
        count = max(1, int(round(fraction * len(y))))
        keep[rng.choice(len(y), size=count, replace=False)] = True
    return keep


def check_every_class_labelled(y_true, keep: np.ndarray, fraction: float) -> None:
    """A class with no kept label can never be predicted; refuse rather than report a misleading score."""
    missing = sorted(set(pd.unique(np.asarray(y_true))) - set(pd.unique(np.asarray(y_true)[keep])), key=str)
    if missing:
        names = ", ".join(str(m) for m in missing[:10])
        raise DataError(f"class {names} got no labelled sample at a labelled fraction of {fraction}; "
                        "raise the fraction or stratify the choice")
