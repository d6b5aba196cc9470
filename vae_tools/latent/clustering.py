"""Clustering latent vectors, and scoring clusters against known labels."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.cluster import HDBSCAN, KMeans, MiniBatchKMeans
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.mixture import GaussianMixture

from vae_tools.errors import DataError
from vae_tools.latent.defaults import CLUSTER_METHOD, CLUSTER_METHODS, CLUSTER_REDUCE, CLUSTERS, UMAP_BACKEND
from vae_tools.latent.projection import check_umap_backend
from vae_tools.latent.reducers import check_reduce, reduced

# Full k-means over more rows than this is slow on a laptop; mini-batch k-means gives nearly the same centres.
MINIBATCH_FROM = 200_000


class LatentClusterer(ClusterMixin, BaseEstimator):
    """k-means, Gaussian mixture or HDBSCAN on latent vectors.

    With ``reduce="umap"`` (the default) the latents are first mapped to ``n_components`` dimensions
    by UMAP with min_dist=0, which packs each manifold into a tight blob that these methods separate
    well (McConville et al. 2020, "N2D"); ``reduce="none"`` clusters the latents themselves;
    ``umap_backend="cuml"`` computes the map with RAPIDS cuML on an NVIDIA GPU.

    ``labels_`` holds one cluster per sample (-1 = noise, HDBSCAN only); ``probabilities_`` the
    strength of each assignment in [0, 1]. HDBSCAN finds the number of clusters itself and ignores
    ``n_clusters``."""

    def __init__(self, method: str = CLUSTER_METHOD, n_clusters: int = CLUSTERS, reduce: str = CLUSTER_REDUCE, n_components: int = 10,
                 min_cluster_size: int | None = None, umap_backend: str = UMAP_BACKEND, random_state: int = 0):
        self.method = method
        self.umap_backend = umap_backend
        self.n_clusters = n_clusters
        self.reduce = reduce
        self.n_components = n_components
        self.min_cluster_size = min_cluster_size
        self.random_state = random_state

    def fit(self, X, y=None):
        X = np.ascontiguousarray(X, dtype=np.float32)
        check_reduce(self.reduce)
        check_umap_backend(self.umap_backend)
        if self.method not in CLUSTER_METHODS:
            raise DataError(f"unknown clustering method {self.method!r}: use one of {', '.join(CLUSTER_METHODS)}")
        if self.method == "hdbscan" and self.min_cluster_size is not None and not 2 <= self.min_cluster_size <= len(X):
            raise DataError(f"min_cluster_size must lie between 2 and the number of samples ({len(X)}), "
                            f"got {self.min_cluster_size}")
        if self.method != "hdbscan" and not 1 <= self.n_clusters <= len(X):
            raise DataError(f"cannot make {self.n_clusters} clusters from {len(X)} samples")
        X = reduced(X, self.reduce, self.n_components, self.random_state, self.umap_backend)
        self.embedding_ = X
        if self.method == "kmeans":
            kind = MiniBatchKMeans if len(X) > MINIBATCH_FROM else KMeans
            model = kind(n_clusters=self.n_clusters, n_init=10, random_state=self.random_state).fit(X)
            distances = model.transform(X)
            self.labels_ = model.labels_
            self.probabilities_ = _softmin(distances)
        elif self.method == "gmm":
            model = GaussianMixture(n_components=self.n_clusters, covariance_type="full", n_init=2,
                                    random_state=self.random_state).fit(X)
            proba = model.predict_proba(X)
            self.labels_ = proba.argmax(1)
            self.probabilities_ = proba.max(1)
        else:
            size = self.min_cluster_size or max(5, len(X) // 100)
            model = HDBSCAN(min_cluster_size=size, copy=True).fit(X)
            self.labels_ = model.labels_
            self.probabilities_ = model.probabilities_
        self.model_ = model
        self.n_clusters_ = len(set(self.labels_.tolist()) - {-1})
        return self


def _softmin(distances: np.ndarray) -> np.ndarray:
    """How clearly each point belongs to its nearest centre: 1 - d_nearest / d_second (0 on a border)."""
    if distances.shape[1] < 2:
        return np.ones(len(distances), dtype=np.float32)
    ordered = np.sort(distances, axis=1)
    return (1 - ordered[:, 0] / np.maximum(ordered[:, 1], 1e-12)).astype(np.float32)


def match_clusters(y_true, clusters) -> dict:
    """The one-to-one cluster -> label mapping that maximises agreement (Hungarian algorithm)."""
    y_true = np.asarray(y_true)
    labels = np.unique(y_true)
    ids = np.unique(clusters)
    counts = np.zeros((len(ids), len(labels)), dtype=np.int64)
    label_pos = {v: i for i, v in enumerate(labels)}
    cluster_pos = {v: i for i, v in enumerate(ids)}
    for c, t in zip(clusters, y_true):
        counts[cluster_pos[c], label_pos[t]] += 1
    rows, cols = linear_sum_assignment(-counts)
    return {ids[r].item(): labels[c].item() if hasattr(labels[c], "item") else labels[c] for r, c in zip(rows, cols)}


def cluster_scores(y_true, clusters) -> dict:
    """Clustering accuracy under the best one-to-one matching, NMI and ARI."""
    y_true = np.asarray(y_true)
    clusters = np.asarray(clusters)
    mapping = match_clusters(y_true, clusters)
    matched = np.array([mapping.get(c.item(), None) for c in clusters], dtype=object)
    accuracy = float(np.mean(matched == y_true.astype(object)))
    return {
        "accuracy": accuracy,
        "nmi": float(normalized_mutual_info_score(y_true, clusters)),
        "ari": float(adjusted_rand_score(y_true, clusters)),
        "n_clusters": int(len(set(clusters.tolist()) - {-1})),
    }
