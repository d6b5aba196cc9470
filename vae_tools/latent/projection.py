"""2-D maps of the latent space."""

from __future__ import annotations

import warnings
from typing import Optional

import numpy as np

from vae_tools.errors import DataError
from vae_tools.latent.defaults import MIN_DIST, NEIGHBORS, UMAP_BACKEND, UMAP_BACKENDS


def check_umap_backend(backend: str) -> None:
    """A backend that is not a name, or not installed, is refused here, before any work starts."""
    if backend not in UMAP_BACKENDS:
        raise DataError(f"unknown UMAP backend {backend!r}: use {' or '.join(UMAP_BACKENDS)}")
    if backend == "cuml":
        _cuml_umap()


def _cuml_umap():
    try:
        from cuml.manifold import UMAP
    except ImportError:
        raise DataError("the cuml backend needs RAPIDS cuML (pip install cuml-cu12, on a machine with an "
                        "NVIDIA GPU); use the umap-learn backend without it") from None
    return UMAP


def umap_embedding(latents: np.ndarray, n_components: int = 2, seed: int = 0, n_neighbors: int = NEIGHBORS,
                   min_dist: float = 0.0, backend: str = UMAP_BACKEND, n_epochs: Optional[int] = None) -> np.ndarray:
    """UMAP coordinates (n, n_components). ``backend``: umap-learn (seeded runs are reproducible,
    and single-threaded, as umap-learn requires) or cuml (RAPIDS, on the GPU: minutes become
    seconds for millions of points; its results vary a little from run to run). ``n_epochs``: the
    layout's optimisation epochs (None: the library's own choice, 200 to 500)."""
    check_umap_backend(backend)
    latents = np.asarray(latents, dtype=np.float32)
    if len(latents) < 3:
        raise DataError(f"a UMAP map needs at least 3 samples, got {len(latents)}")
    n_neighbors = min(n_neighbors, len(latents) - 1)
    init = "spectral" if len(latents) > n_components + 2 else "random"
    if backend == "cuml":
        reducer = _cuml_umap()(n_components=n_components, n_neighbors=n_neighbors, min_dist=min_dist, init=init,
                       random_state=seed, n_epochs=n_epochs)
    else:
        import umap

        reducer = umap.UMAP(n_components=n_components, n_neighbors=n_neighbors, min_dist=min_dist, random_state=seed,
                            n_jobs=1, init=init, n_epochs=n_epochs, precomputed_knn=_neighbours_with_self(latents, n_neighbors))
    with warnings.catch_warnings():  # that a map given its neighbours cannot transform new data: none is asked
        warnings.filterwarnings("ignore", message="precomputed_knn", category=UserWarning)
        return np.asarray(reducer.fit_transform(latents), dtype=np.float32)


def _neighbours_with_self(x: np.ndarray, n_neighbors: int) -> tuple[np.ndarray, np.ndarray]:
    """UMAP's neighbour lists (each row first, at distance 0) from faiss. umap-learn's own search
    (NN-descent) is compiled by numba in every new process: 30 of a fresh 70,000-point map's 41 s
    here, where faiss answers in under a second."""
    from vae_tools.latent.neighbors import nearest_neighbors

    indices, distances = nearest_neighbors(x, n_neighbors - 1)
    own = np.arange(len(x))[:, None]
    return np.hstack([own, indices]), np.hstack([np.zeros_like(own, dtype=np.float32), distances])


def umap_2d(latents: np.ndarray, n_neighbors: int = NEIGHBORS, min_dist: float = MIN_DIST, seed: int = 0,
            backend: str = UMAP_BACKEND) -> np.ndarray:
    """A 2-D map for pictures (min_dist > 0 keeps points of one class from piling up on each other)."""
    return umap_embedding(latents, 2, seed, n_neighbors, min_dist, backend)
