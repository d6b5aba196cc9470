"""Which unlabelled samples to label next: uncertain ones, spread over the latent space."""

from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans


def margin_uncertainty(distributions: np.ndarray) -> np.ndarray:
    """1 - (top probability - second probability): 1 when two labels tie, 0 when one is certain."""
    if distributions.shape[1] < 2:
        return np.zeros(len(distributions), dtype=np.float32)
    top2 = -np.partition(-distributions, 1, axis=1)[:, :2]
    return (1.0 - (top2[:, 0] - top2[:, 1])).astype(np.float32)


def suggest_labels(latents: np.ndarray, distributions: np.ndarray, candidates: np.ndarray, n: int,
                   pool_factor: int = 10, seed: int = 0) -> np.ndarray:
    """Positions of ``n`` samples among ``candidates`` (a boolean mask): the ``pool_factor * n`` most
    uncertain are grouped into ``n`` k-means clusters and the most uncertain of each group is taken,
    so the suggestions do not all sit on one confused border."""
    uncertainty = margin_uncertainty(distributions)
    pool = np.flatnonzero(candidates)
    n = min(n, len(pool))
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    pool = pool[np.argsort(-uncertainty[pool], kind="stable")[: max(n, pool_factor * n)]]
    if len(pool) == n:
        chosen = pool
    else:
        groups = KMeans(n_clusters=n, n_init=3, random_state=seed).fit_predict(latents[pool])
        chosen = np.array([pool[groups == g][np.argmax(uncertainty[pool[groups == g]])] for g in range(n)
                           if (groups == g).any()])
    return chosen[np.argsort(-uncertainty[chosen], kind="stable")]
