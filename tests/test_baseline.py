"""The propagation baseline: scikit-learn LabelSpreading over the same 7-NN graph as its own "knn"
kernel, with the neighbours found by faiss so that it also finishes on a million images."""

import numpy as np
from sklearn.decomposition import PCA
from sklearn.neighbors import NearestNeighbors
from sklearn.semi_supervised import LabelSpreading

from vae_tools.latent.baseline import baseline_predictions, knn_connectivity


def clusters(n=600, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    centres = rng.normal(scale=2.0, size=(4, 40))
    return (centres[y] + rng.normal(size=(n, 40))).astype(np.float32), y


def test_the_faiss_graph_is_scikit_learns_knn_graph():
    x, _ = clusters()
    ours = knn_connectivity(x, 7)
    # What LabelSpreading(kernel="knn") builds: the fitted points' own 7-NN graph, each point in its row.
    theirs = NearestNeighbors(n_neighbors=7).fit(x).kneighbors_graph(x, 7, mode="connectivity")
    assert ours.shape == theirs.shape == (600, 600)
    assert (ours != theirs).nnz == 0
    assert np.all(ours.sum(1) == 7) and np.all(ours.diagonal() == 1)


def test_the_baseline_labels_as_scikit_learns_label_spreading_does():
    x, y = clusters(seed=1)
    given = np.where(np.arange(len(y)) % 20 == 0, y, -1)
    features = PCA(30, random_state=0).fit_transform(x)
    theirs = LabelSpreading(kernel="knn", n_neighbors=7).fit(features, given).transduction_
    ours = baseline_predictions(x, np.where(given >= 0, given.astype(object), None)).astype(int)
    assert np.mean(ours == theirs) > 0.99
    assert np.mean(ours[given < 0] == y[given < 0]) > 0.9


def test_the_baseline_handles_two_samples_and_text_labels():
    x = np.array([[0.0, 1.0], [1.0, 0.0]], dtype=np.float32)
    assert list(baseline_predictions(x, np.array(["cat", None], dtype=object))) == ["cat", "cat"]
