"""Sparse affinity graphs built from k-nearest-neighbour lists."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from vae_tools.latent.defaults import GRAPHS


def affinity_graph(indices: np.ndarray, distances: np.ndarray, kind: str = "umap", seed: int = 0) -> sp.csr_matrix:
    """Symmetric sparse affinities, at most 2k non-zeros per row.

    ``umap``: UMAP's fuzzy simplicial set (each point's distances rescaled by its own local scale,
    so dense and sparse classes connect alike). ``knn``: the plain symmetrised 0/1 kNN graph."""
    n, k = indices.shape
    if kind == "umap":
        from umap.umap_ import fuzzy_simplicial_set

        graph, _, _ = fuzzy_simplicial_set(
            np.zeros((n, 1), dtype=np.float32), n_neighbors=k, random_state=np.random.RandomState(seed),
            metric="euclidean", knn_indices=indices, knn_dists=distances)
        return graph.tocsr().astype(np.float32)
    if kind == "knn":
        rows = np.repeat(np.arange(n), k)
        graph = sp.csr_matrix((np.ones(n * k, dtype=np.float32), (rows, indices.ravel())), shape=(n, n))
        return graph.maximum(graph.T).tocsr()
    raise ValueError(f"unknown graph {kind!r}: use one of {', '.join(GRAPHS)}")
