"""k-nearest-neighbour search over latent vectors with faiss: exact for moderate sets, HNSW beyond;
exact on every GPU when faiss-gpu is installed."""

from __future__ import annotations

import contextlib
import os

import numpy as np

from vae_tools.errors import DataError

# Exact search costs n^2 distance evaluations (about 5 s for 70,000 16-d points on 2 cores); past
# this many points HNSW is much faster and its recall on low-dimensional latents is above 0.99.
EXACT_LIMIT = 200_000


def check_neighbors(n_samples: int, n_neighbors: int) -> None:
    if n_neighbors < 1:
        raise DataError(f"n_neighbors must be at least 1, got {n_neighbors}")
    if n_samples <= n_neighbors:
        raise DataError(f"{n_samples} samples are too few for {n_neighbors} neighbours; "
                        f"use at most {n_samples - 1} neighbours or more samples")


@contextlib.contextmanager
def faiss_threads(n: int):
    """faiss's OpenMP thread count set for a block and given back after (the count is process-wide)."""
    import faiss

    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(n)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(previous)


def nearest_neighbors(x: np.ndarray, n_neighbors: int, method: str = "auto", batch_size: int = 65536) -> tuple[np.ndarray, np.ndarray]:
    """Indices and Euclidean distances of each row's ``n_neighbors`` nearest other rows, shape (n, k),
    nearest first. ``method``: exact, approximate or auto (exact up to EXACT_LIMIT rows)."""
    with faiss_threads(os.cpu_count() or 1):
        return _nearest_neighbors(np.ascontiguousarray(x, dtype=np.float32), n_neighbors, method, batch_size)


def _nearest_neighbors(x: np.ndarray, n_neighbors: int, method: str, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    import faiss

    check_neighbors(len(x), n_neighbors)
    gpus = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0  # faiss-gpu builds only
    if method == "auto":
        # On GPUs exact search stays fast far beyond the CPU's limit (brute force is what they do best).
        method = "exact" if len(x) <= EXACT_LIMIT or gpus else "approximate"
    if method == "exact":
        index = faiss.IndexFlatL2(x.shape[1])
        if gpus:
            index = faiss.index_cpu_to_all_gpus(index)
    elif method == "approximate":
        # faiss seeds HNSW's level draws itself, so the graph depends only on the data and its order.
        index = faiss.IndexHNSWFlat(x.shape[1], 32)
        index.hnsw.efConstruction = 80
        index.hnsw.efSearch = max(64, 2 * n_neighbors)
    else:
        raise ValueError(f"unknown neighbour method {method!r}: use auto, exact or approximate")
    index.add(x)
    indices = np.empty((len(x), n_neighbors), dtype=np.int64)
    distances = np.empty((len(x), n_neighbors), dtype=np.float32)
    for start in range(0, len(x), batch_size):
        block = slice(start, start + batch_size)
        squared, found = index.search(x[block], n_neighbors + 1)
        indices[block], distances[block] = _drop_self(found, squared, np.arange(start, start + len(found)), n_neighbors)
    missing = np.flatnonzero((indices < 0).any(1))
    if len(missing):  # HNSW can come back short for a few points; search those exactly
        exact = faiss.IndexFlatL2(x.shape[1])
        exact.add(x)
        squared, found = exact.search(x[missing], n_neighbors + 1)
        indices[missing], distances[missing] = _drop_self(found, squared, missing, n_neighbors)
    return indices, np.sqrt(np.maximum(distances, 0))


def _drop_self(found: np.ndarray, squared: np.ndarray, own: np.ndarray, k: int):
    """Remove each query point from its own result row (normally first, but not always when points
    coincide); rows that did not contain it lose their last entry instead."""
    keep = found != own[:, None]
    keep[keep.sum(1) > k, -1] = False
    return found[keep].reshape(len(found), k), squared[keep].reshape(len(found), k)
