"""Synthetic outliers to plant among real images: a check that a score finds what is plainly not
data of the kind it was trained on, on the user's own data, without labelled anomalies."""

from __future__ import annotations

import numpy as np

KINDS = ("inverted", "noise")


def planted_outliers(images: np.ndarray, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` outliers for NCHW ``images`` in [0, 1]: alternately an inverted copy of a random image
    (the right strokes, the wrong contrast) and uniform noise. Returns (outliers, their kinds)."""
    rng = np.random.default_rng(seed)
    kinds = np.array([KINDS[k % 2] for k in range(n)])
    out = rng.random((n, *images.shape[1:]), dtype=np.float32)
    inverted = kinds == "inverted"
    if inverted.any() and len(images):
        out[inverted] = 1.0 - images[rng.choice(len(images), size=int(inverted.sum()))]
    return out, kinds
