"""Which features a clustering is made on, chosen without labels.

Which features cluster best depends on the data (bench/cluster_features.py): on scikit-learn's 8x8
digits a UMAP map of the pixels, or of latents plus pixels, gives clusters that match the classes
about 5 points better than a map of the VAE's latents; on MNIST the pixels alone are 14 points
worse than the latents; on colour photos (CIFAR-10, 10,000) the latents reach 0.33 and the pixels 0.21.
Clustering has no labels to validate against. The silhouette of each candidate's own map does not
say which features carry the classes: on those photos the pixels' map scored highest (0.31 against
0.30) and was the worst set. What does say it is what the model's codes were trained to hold, so
with ``features="auto"`` the model's own ``preferred_features`` are kept. Only without a model (an
embeddings table and its images) each candidate set is mapped and clustered and the one whose
clusters stand most clearly apart in their own map is kept: the highest mean silhouette."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np
from sklearn.base import clone
from sklearn.metrics import silhouette_score

from vae_tools.latent.clustering import LatentClusterer
from vae_tools.latent.features import candidate_names, feature_matrix
from vae_tools.latent.reducers import UMAP_LIMIT, reduces

# Silhouette costs n^2 distances: 70,000 points would need 4.9e9 of them; a seeded sample of this
# many needs 2.5e7.
SILHOUETTE_SAMPLE = 5000


@dataclass
class ClusteringChoice:
    clusterer: LatentClusterer  # fitted on the chosen features
    features: str
    why: str
    silhouettes: dict = field(default_factory=dict)  # feature set -> mean silhouette of its clusters
    candidates: dict = field(default_factory=dict)  # feature set -> the clusterer fitted on it


def separation(space: np.ndarray, labels: np.ndarray, seed: int = 0) -> float:
    """Mean silhouette of the clusters in ``space`` (noise points left out); -1 with fewer than two clusters."""
    kept = labels != -1
    space, labels = space[kept], labels[kept]
    n_clusters = len(np.unique(labels))
    if n_clusters < 2 or n_clusters >= len(labels):
        return -1.0
    size = SILHOUETTE_SAMPLE if len(labels) > SILHOUETTE_SAMPLE else None
    return float(silhouette_score(space, labels, sample_size=size, random_state=seed))


def candidates_for(clusterer: LatentClusterer, features: str, have_pixels: bool, n_samples: int,
                   model_choice: Optional[tuple] = None) -> tuple[list, str]:
    """The feature sets ``cluster_with_features`` will fit, and why when it is one set only; cheap,
    so a caller can learn whether it needs the pixels before computing them. ``model_choice``: the
    model's own (name, why), its ``preferred_features``, which ``auto`` keeps when the images are known."""
    names = candidate_names(features, have_pixels)
    if features == "auto" and model_choice is not None and model_choice[0] in names:
        return [model_choice[0]], model_choice[1]
    why = "as asked" if features != "auto" else "only the latents are known, not the images"
    if len(names) > 1 and not reduces(clusterer.reduce, n_samples):
        names, why = ["latents"], "without a UMAP map the feature sets' spaces differ and cannot be compared"
    if len(names) > 1 and clusterer.umap_backend != "cuml" and n_samples > UMAP_LIMIT:
        names, why = ["latents"], (f"over {UMAP_LIMIT:,} samples three CPU UMAP maps take too long "
                                   "(umap_backend='cuml' on a GPU compares them)")
    return names, why


def cluster_with_features(clusterer: LatentClusterer, latents: np.ndarray, pixels: Optional[np.ndarray],
                          features: str = "auto", seed: int = 0, model_choice: Optional[tuple] = None) -> ClusteringChoice:
    """Fit ``clusterer`` (left unfitted) on the named features. With ``features="auto"``, the set the
    model's kind calls for (``model_choice``, the model's ``preferred_features``), or without one each
    candidate set, keeping the best separated. ``pixels``: principal components of the images
    (``pixel_components``), or None when only the latents are known."""
    names, why = candidates_for(clusterer, features, pixels is not None, len(latents), model_choice)
    if len(names) == 1:
        return ClusteringChoice(clone(clusterer).fit(feature_matrix(names[0], latents, pixels)), names[0], why)
    fits, silhouettes = {}, {}
    for name in names:
        fits[name] = clone(clusterer).fit(feature_matrix(name, latents, pixels))
        silhouettes[name] = round(separation(fits[name].embedding_, fits[name].labels_, seed), 4)
    best = max(silhouettes, key=silhouettes.get)
    return ClusteringChoice(fits[best], best, "its clusters are the best separated: the highest mean silhouette "
                            "on its map", silhouettes, fits)
