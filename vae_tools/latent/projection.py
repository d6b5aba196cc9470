"""2-D maps of the latent space."""

from __future__ import annotations

import numpy as np

from vae_tools.errors import DataError


def umap_embedding(latents: np.ndarray, n_components: int = 2, seed: int = 0, n_neighbors: int = 15,
                   min_dist: float = 0.0) -> np.ndarray:
    """UMAP coordinates (n, n_components). Seeded runs are reproducible (and single-threaded, as UMAP requires)."""
    import umap

    latents = np.asarray(latents, dtype=np.float32)
    if len(latents) < 3:
        raise DataError(f"a UMAP map needs at least 3 samples, got {len(latents)}")
    n_neighbors = min(n_neighbors, len(latents) - 1)
    reducer = umap.UMAP(n_components=n_components, n_neighbors=n_neighbors, min_dist=min_dist, random_state=seed,
                        n_jobs=1, init="spectral" if len(latents) > n_components + 2 else "random")
    return reducer.fit_transform(latents).astype(np.float32)


def umap_2d(latents: np.ndarray, n_neighbors: int = 15, min_dist: float = 0.1, seed: int = 0) -> np.ndarray:
    """A 2-D map for pictures (min_dist > 0 keeps points of one class from piling up on each other)."""
    return umap_embedding(latents, 2, seed, n_neighbors, min_dist)
