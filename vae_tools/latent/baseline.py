"""The plain baseline a label-propagation result is shown beside: PCA of the pixels plus
scikit-learn's LabelSpreading, which needs no trained model."""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA
from sklearn.semi_supervised import LabelSpreading

from vae_tools.latent.labels import unlabelled_mask

BASELINE_COMPONENTS = 30


def baseline_predictions(pixels: np.ndarray, y_partial, n_components: int = BASELINE_COMPONENTS) -> np.ndarray:
    """A label for every sample from PCA-``n_components`` + LabelSpreading(kernel="knn")."""
    flat = np.asarray(pixels, dtype=np.float32).reshape(len(pixels), -1)
    features = PCA(min(n_components, *flat.shape), random_state=0).fit_transform(flat)
    y = np.asarray(y_partial, dtype=object)
    hidden = unlabelled_mask(y)
    classes, codes = np.unique(y[~hidden].astype(str), return_inverse=True)
    targets = np.full(len(y), -1)
    targets[~hidden] = codes
    spread = LabelSpreading(kernel="knn", n_neighbors=min(7, len(y) - 1)).fit(features, targets)
    return classes[spread.transduction_]


def describe() -> str:
    return f"PCA-{BASELINE_COMPONENTS} of the pixels + scikit-learn LabelSpreading(kernel='knn')"
