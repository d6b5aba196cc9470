"""2-D maps of the latent space."""

from __future__ import annotations

import numpy as np

from vae_tools.errors import DataError
from vae_tools.latent.defaults import MIN_DIST, NEIGHBORS, UMAP_BACKEND, UMAP_BACKENDS


def check_umap_backend(backend: str) -> None:
    if backend not in UMAP_BACKENDS:
        raise DataError(f"unknown UMAP backend {backend!r}: use {' or '.join(UMAP_BACKENDS)}")


def umap_embedding(latents: np.ndarray, n_components: int = 2, seed: int = 0, n_neighbors: int = NEIGHBORS,
                   min_dist: float = 0.0, backend: str = UMAP_BACKEND) -> np.ndarray:
    """UMAP coordinates (n, n_components). ``backend``: umap-learn (seeded runs are reproducible,
    and single-threaded, as umap-learn requires) or cuml (RAPIDS, on the GPU: minutes become
    seconds for millions of points; its results vary a little from run to run)."""
    check_umap_backend(backend)
    latents = np.asarray(latents, dtype=np.float32)
    if len(latents) < 3:
        raise DataError(f"a UMAP map needs at least 3 samples, got {len(latents)}")
    n_neighbors = min(n_neighbors, len(latents) - 1)
    init = "spectral" if len(latents) > n_components + 2 else "random"
    if backend == "cuml":
        try:
            from cuml.manifold import UMAP
        except ImportError:
            raise DataError("the cuml backend needs RAPIDS cuML (pip install cuml-cu12, on a machine with an "
                            "NVIDIA GPU); use the umap-learn backend without it") from None
        reducer = UMAP(n_components=n_components, n_neighbors=n_neighbors, min_dist=min_dist, init=init,
                       random_state=seed)
    else:
        import umap

        reducer = umap.UMAP(n_components=n_components, n_neighbors=n_neighbors, min_dist=min_dist, random_state=seed,
                            n_jobs=1, init=init)
    return np.asarray(reducer.fit_transform(latents), dtype=np.float32)


def umap_2d(latents: np.ndarray, n_neighbors: int = NEIGHBORS, min_dist: float = MIN_DIST, seed: int = 0,
            backend: str = UMAP_BACKEND) -> np.ndarray:
    """A 2-D map for pictures (min_dist > 0 keeps points of one class from piling up on each other)."""
    return umap_embedding(latents, 2, seed, n_neighbors, min_dist, backend)
