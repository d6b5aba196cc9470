"""The plain baseline a label-propagation result is shown beside: PCA of the pixels plus
scikit-learn's LabelSpreading, which needs no trained model.

LabelSpreading's own "knn" kernel finds neighbours by brute force past 15 dimensions: n^2 distances
and a partial sort of each row, minutes at 100,000 images and hours at a million. The same graph
(each sample joined to its k nearest, itself included) comes from faiss here, exactly up to
neighbors.EXACT_LIMIT samples and by HNSW beyond, so the baseline stays the same one where it was
measured and still finishes at a million."""

from __future__ import annotations

import numpy as np
from scipy import sparse
from sklearn.decomposition import PCA
from sklearn.semi_supervised import LabelSpreading

from vae_tools.latent.labels import unlabelled_mask
from vae_tools.latent.neighbors import EXACT_LIMIT, nearest_neighbors

BASELINE_COMPONENTS = 30
BASELINE_NEIGHBORS = 7  # LabelSpreading's default


def knn_connectivity(x: np.ndarray, n_neighbors: int) -> sparse.csr_matrix:
    """LabelSpreading's "knn" affinity, (n, n) with ones: each row's ``n_neighbors`` nearest rows,
    the row itself among them."""
    n = len(x)
    others = nearest_neighbors(x, n_neighbors - 1)[0] if n_neighbors > 1 else np.empty((n, 0), dtype=np.int64)
    columns = np.concatenate([np.arange(n)[:, None], others], axis=1).ravel()
    rows = np.repeat(np.arange(n), n_neighbors)
    return sparse.csr_matrix((np.ones(len(columns)), (rows, columns)), shape=(n, n))


def baseline_predictions(pixels: np.ndarray, y_partial, n_components: int = BASELINE_COMPONENTS) -> np.ndarray:
    """A label for every sample from PCA-``n_components`` + LabelSpreading over the 7-NN graph."""
    flat = np.asarray(pixels, dtype=np.float32).reshape(len(pixels), -1)
    features = PCA(min(n_components, *flat.shape), random_state=0).fit_transform(flat)
    y = np.asarray(y_partial, dtype=object)
    hidden = unlabelled_mask(y)
    classes, codes = np.unique(y[~hidden].astype(str), return_inverse=True)
    targets = np.full(len(y), -1)
    targets[~hidden] = codes
    k = min(BASELINE_NEIGHBORS, len(y) - 1)
    spread = LabelSpreading(kernel=lambda a, b: knn_connectivity(a, k)).fit(features, targets)
    return classes[spread.transduction_]


def describe() -> str:
    return (f"PCA-{BASELINE_COMPONENTS} of the pixels + scikit-learn LabelSpreading over the "
            f"{BASELINE_NEIGHBORS}-NN graph (kernel='knn'; neighbours by faiss, exact up to {EXACT_LIMIT:,} samples)")
