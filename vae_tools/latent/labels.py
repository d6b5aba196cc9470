"""Labelled/unlabelled bookkeeping: which samples carry a label, and hiding labels for evaluation."""

from __future__ import annotations

import math

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


def labelled_count(labelled, n: int) -> int:
    """How many of ``n`` samples keep their label: ``labelled`` is a share (strictly between 0 and 1)
    or a count (a whole number from 1), as users think of their labels either way."""
    try:
        value = float(labelled)
    except (TypeError, ValueError):
        raise DataError(f"the labelled amount must be a share between 0 and 1 or a count of labels, got {labelled!r}") \
            from None
    if 0 < value < 1:
        return max(1, int(round(value * n)))
    if math.isfinite(value) and value >= 1 and value == int(value):
        if value >= n:
            raise DataError(f"{int(value)} labels of {n} samples leave none to predict; keep fewer")
        return int(value)
    raise DataError(f"the labelled amount must lie strictly between 0 and 1 (a share) or be a whole number of labels "
                    f"from 1, got {labelled}")


def hide_labels(y, labelled, seed: int = 0, stratify: bool = False) -> np.ndarray:
    """Boolean mask of the samples whose label is kept: ``labelled`` of ``y`` at random, a share
    (0.02) or a count (100), spread over the classes in proportion to their size (at least one
    each) when ``stratify``. The rest play the unlabelled part in an evaluation."""
    y = np.asarray(y)
    count = labelled_count(labelled, len(y))
    rng = np.random.default_rng(seed)
    keep = np.zeros(len(y), dtype=bool)
    if stratify:
        for value in pd.unique(y):
            members = np.flatnonzero(y == value)
            share = max(1, min(len(members), int(round(count * len(members) / len(y)))))
            keep[rng.choice(members, size=share, replace=False)] = True
    else:
        keep[rng.choice(len(y), size=count, replace=False)] = True
    return keep


def keep_per_class(y, per_class: int, seed: int = 0) -> np.ndarray:
    """Boolean mask keeping ``per_class`` labels of every class at random (an evaluation of the
    few-label regime: "one label per class"); a class with no more samples than that is refused,
    as none of it would be left to predict."""
    if int(per_class) != per_class or per_class < 1:
        raise DataError(f"labels per class must be a whole number from 1, got {per_class}")
    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    keep = np.zeros(len(y), dtype=bool)
    for value in sorted(pd.unique(y), key=str):
        members = np.flatnonzero(y == value)
        if len(members) <= per_class:
            raise DataError(f"class {value} has {len(members)} samples: {per_class} labels per class leave none of it "
                            "to predict")
        keep[rng.choice(members, size=int(per_class), replace=False)] = True
    return keep


def check_every_class_labelled(y_true, keep: np.ndarray, labelled) -> None:
    """A class with no kept label can never be predicted; refuse rather than report a misleading score."""
    missing = sorted(set(pd.unique(np.asarray(y_true))) - set(pd.unique(np.asarray(y_true)[keep])), key=str)
    if missing:
        names = ", ".join(str(m) for m in missing[:10])
        raise DataError(f"class {names} got no labelled sample with {labelled} labelled; keep more labels, stratify "
                        "the choice, or keep a number of labels per class")
