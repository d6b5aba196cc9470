import numpy as np
import pytest

from vae_tools.errors import DataError
from vae_tools.latent.defaults import ENSEMBLE_LIMIT, ENSEMBLE_MAPS
from vae_tools.latent.features import effective_maps
from vae_tools.latent.reducers import reduced_maps
from vae_tools.latent import cluster_features
from vae_tools.latent.cluster_features import cluster_with_features
from vae_tools.latent.clustering import LatentClusterer, cluster_scores, match_clusters
from vae_tools.latent.graph import affinity_graph
from vae_tools.latent.labels import check_every_class_labelled, hide_labels, unlabelled_mask
from vae_tools.latent.metrics import classification_metrics
from vae_tools.latent.neighbors import nearest_neighbors
from vae_tools.latent.propagation import LabelPropagator
from vae_tools.latent.suggest import margin_uncertainty, suggest_labels


def blobs(n_per_class=300, n_classes=4, dim=8, spread=0.6, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(n_classes, dim))
    labels = np.repeat(np.arange(n_classes), n_per_class)
    return (centres[labels] + rng.normal(scale=spread, size=(len(labels), dim))).astype(np.float32), labels


def test_exact_neighbours_match_brute_force_and_exclude_the_point_itself():
    x = np.random.default_rng(1).normal(size=(400, 5)).astype(np.float32)
    indices, distances = nearest_neighbors(x, 7, method="exact")
    full = np.linalg.norm(x[:, None] - x[None], axis=2)
    np.fill_diagonal(full, np.inf)
    expected = np.sort(full, axis=1)[:, :7]
    np.testing.assert_allclose(distances, expected, rtol=1e-3, atol=1e-4)
    assert not (indices == np.arange(400)[:, None]).any()


def test_approximate_neighbours_have_high_recall_and_survive_duplicate_points():
    x = np.random.default_rng(2).normal(size=(3000, 6)).astype(np.float32)
    x[100:110] = x[100]  # ten identical points
    approx, _ = nearest_neighbors(x, 10, method="approximate")
    exact, _ = nearest_neighbors(x, 10, method="exact")
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(approx, exact)])
    assert recall > 0.95
    assert (approx >= 0).all() and not (approx == np.arange(3000)[:, None]).any()


def test_too_few_samples_for_the_neighbours_is_a_clear_error():
    with pytest.raises(DataError, match="5 samples are too few for 10 neighbours"):
        nearest_neighbors(np.zeros((5, 2), np.float32), 10)


@pytest.mark.parametrize("kind", ["umap", "knn"])
def test_affinity_graph_is_sparse_and_symmetric(kind):
    x, _ = blobs(100, 3)
    graph = affinity_graph(*nearest_neighbors(x, 10), kind=kind)
    assert graph.shape == (300, 300)
    assert graph.nnz <= 2 * 10 * 300
    assert abs(graph - graph.T).max() < 1e-6
    assert graph.diagonal().max() == 0


@pytest.mark.parametrize("method", ["spreading", "centroids", "knn"])
def test_propagation_recovers_blob_labels_from_two_percent(method):
    x, y = blobs()
    keep = hide_labels(y, 0.02, seed=0, stratify=True)
    model = LabelPropagator(method=method, n_neighbors=10).fit(x, np.where(keep, y, -1))
    assert (model.transduction_[keep] == y[keep]).all()
    assert (model.transduction_[~keep] == y[~keep]).mean() > 0.97
    np.testing.assert_allclose(model.label_distributions_.sum(1), 1, atol=1e-5)
    assert model.confidence_.min() >= 0 and model.confidence_.max() <= 1


def test_string_labels_with_none_for_unlabelled_and_predict_on_new_points():
    x, y = blobs(n_classes=3)
    names = np.array(["cat", "dog", "eel"], dtype=object)[y]
    keep = hide_labels(y, 0.05, seed=3, stratify=True)
    given = np.where(keep, names, None)
    model = LabelPropagator().fit(x, given)
    assert list(model.classes_) == ["cat", "dog", "eel"]
    assert (model.transduction_[~keep] == names[~keep]).mean() > 0.97
    new_x, new_y = blobs(n_per_class=20, n_classes=3)
    assert (model.predict(new_x) == np.array(["cat", "dog", "eel"])[new_y]).mean() > 0.95


def test_several_maps_average_the_label_distributions_of_single_maps_of_those_seeds():
    x, y = blobs(n_per_class=60, n_classes=3, dim=14, spread=2.5, seed=5)
    given = np.where(hide_labels(y, 0.05, seed=0, stratify=True), y, -1)
    ensemble = LabelPropagator(n_maps=3, random_state=7).fit(x, given)
    singles = [LabelPropagator(n_maps=1, random_state=7 + i).fit(x, given) for i in range(3)]
    assert ensemble.n_maps_ == 3 and all(s.n_maps_ == 1 for s in singles)
    np.testing.assert_allclose(ensemble.label_distributions_,
                               np.mean([s.label_distributions_ for s in singles], axis=0), atol=1e-5)
    # The maps differ (else averaging would be pointless), and given maps are used as they are.
    maps = reduced_maps(x, "umap", 10, seed=7, n_maps=3)
    assert maps.shape == (3, 180, 10) and not np.allclose(maps[0], maps[1], atol=0.1)
    from_maps = LabelPropagator().fit(maps, given)
    np.testing.assert_allclose(from_maps.label_distributions_, ensemble.label_distributions_, atol=1e-5)
    proba = from_maps.predict_proba(maps[:, :4])
    assert proba.shape == (4, 3) and np.allclose(proba.sum(1), 1)
    with pytest.raises(DataError, match="shaped like the fitted data"):
        from_maps.predict_proba(x[:4])


def test_auto_maps_follow_the_sample_count_and_bad_counts_are_refused():
    assert effective_maps("auto", ENSEMBLE_LIMIT) == ENSEMBLE_MAPS and effective_maps("auto", ENSEMBLE_LIMIT + 1) == 1
    assert effective_maps(3, 10) == 3
    for bad in (0, -2, 1.5, "many", True):
        with pytest.raises(DataError, match="number of maps"):
            effective_maps(bad, 100)


def test_unlabelled_markers():
    assert unlabelled_mask(np.array([1, -1, 2])).tolist() == [False, True, False]
    assert unlabelled_mask(np.array(["a", None, "", float("nan")], dtype=object)).tolist() == [False, True, True, True]
    with pytest.raises(DataError, match="no sample is labelled"):
        LabelPropagator().fit(np.zeros((20, 2)), np.full(20, -1))


@pytest.mark.parametrize("amount", [0, 1.5, -0.1, float("nan"), float("inf"), "many"])
def test_a_labelled_amount_that_is_neither_a_share_nor_a_count_is_refused(amount):
    with pytest.raises(DataError, match="between 0 and 1"):
        hide_labels(np.arange(10), amount)


def test_labels_are_kept_by_share_or_by_count_and_per_class():
    from vae_tools.latent.labels import keep_per_class

    y = np.repeat(["a", "b", "c"], [50, 30, 20])
    assert hide_labels(y, 0.1).sum() == 10 and hide_labels(y, 10).sum() == 10 and hide_labels(y, 1).sum() == 1
    assert np.array_equal(hide_labels(y, 10, seed=2), hide_labels(y, 0.1, seed=2))  # one draw, however it is asked
    stratified = hide_labels(y, 10, seed=1, stratify=True)
    assert [int(stratified[y == c].sum()) for c in "abc"] == [5, 3, 2]
    with pytest.raises(DataError, match="100 labels of 100 samples leave none to predict"):
        hide_labels(y, 100)
    for n in (1, 5):
        keep = keep_per_class(y, n, seed=3)
        assert [int(keep[y == c].sum()) for c in "abc"] == [n, n, n]
    assert not np.array_equal(keep_per_class(y, 1, seed=3), keep_per_class(y, 1, seed=4))
    with pytest.raises(DataError, match="class c has 20 samples: 20 labels per class leave none of it to predict"):
        keep_per_class(y, 20)


def test_hidden_labels_are_seeded_and_stratified_keeps_every_class():
    y = np.repeat([0, 1, 2], [500, 30, 5])
    keep = hide_labels(y, 0.02, seed=4, stratify=True)
    assert set(y[keep]) == {0, 1, 2}
    assert keep.sum() == 10 + 1 + 1
    assert (hide_labels(y, 0.1, seed=4) == hide_labels(y, 0.1, seed=4)).all()
    sparse = np.zeros(len(y), dtype=bool)
    sparse[:5] = True
    with pytest.raises(DataError, match="class 1, 2 got no labelled sample"):
        check_every_class_labelled(y, sparse, 0.01)


def test_cluster_methods_find_the_blobs():
    x, y = blobs(200, 4, spread=0.4)
    for method in ("kmeans", "gmm", "hdbscan"):
        model = LatentClusterer(method=method, n_clusters=4).fit(x)
        scores = cluster_scores(y, model.labels_)
        assert scores["accuracy"] > 0.95, method
        assert scores["nmi"] > 0.9, method


def test_auto_features_keep_the_set_whose_clusters_stand_apart_without_looking_at_labels():
    structured, y = blobs(60, 4, dim=12, spread=0.5)
    noise = np.random.default_rng(5).normal(size=structured.shape).astype(np.float32)
    clusterer = LatentClusterer(n_clusters=4)
    from_pixels = cluster_with_features(clusterer, noise, structured)
    assert from_pixels.features != "latents"
    assert set(from_pixels.silhouettes) == {"latents", "latents+pixels", "pixels"}
    assert from_pixels.silhouettes[from_pixels.features] == max(from_pixels.silhouettes.values())
    assert from_pixels.silhouettes["latents"] < from_pixels.silhouettes["pixels"] - 0.2
    assert cluster_scores(y, from_pixels.clusterer.labels_)["accuracy"] > 0.95
    from_latents = cluster_with_features(clusterer, structured, noise)
    assert from_latents.features != "pixels"
    assert from_latents.silhouettes["pixels"] < from_latents.silhouettes["latents"] - 0.2
    assert cluster_scores(y, from_latents.clusterer.labels_)["accuracy"] > 0.95
    assert not hasattr(clusterer, "labels_")  # the template is cloned, never fitted


def test_feature_choice_falls_back_to_the_latents_and_says_why(monkeypatch):
    x, _ = blobs(30, 3, dim=12)
    without_images = cluster_with_features(LatentClusterer(n_clusters=3), x, None)
    assert without_images.features == "latents" and "not the images" in without_images.why
    unmapped = cluster_with_features(LatentClusterer(n_clusters=3, reduce="none"), x, x[:, :5])
    assert unmapped.features == "latents" and "UMAP" in unmapped.why and not unmapped.silhouettes
    monkeypatch.setattr(cluster_features, "UMAP_LIMIT", 50)
    large = cluster_with_features(LatentClusterer(n_clusters=3), x, x[:, :5])
    assert large.features == "latents" and "take too long" in large.why
    asked = cluster_with_features(LatentClusterer(n_clusters=3, reduce="none"), x, x[:, :5], features="pixels")
    assert asked.features == "pixels" and asked.clusterer.embedding_.shape == (90, 5)
    with pytest.raises(DataError, match="needs the images"):
        cluster_with_features(LatentClusterer(n_clusters=3), x, None, features="latents+pixels")
    with pytest.raises(DataError, match="unknown feature set 'edges'"):
        cluster_with_features(LatentClusterer(n_clusters=3), x, None, features="edges")


def test_cluster_accuracy_uses_the_best_one_to_one_matching():
    truth = np.array([0, 0, 0, 1, 1, 2, 2, 2])
    clusters = np.array([5, 5, 7, 7, 7, 9, 9, 9])
    assert match_clusters(truth, clusters) == {5: 0, 7: 1, 9: 2}
    assert cluster_scores(truth, clusters)["accuracy"] == pytest.approx(7 / 8)
    with pytest.raises(DataError, match="cannot make 50 clusters from 8 samples"):
        LatentClusterer(n_clusters=50).fit(np.zeros((8, 2)))


def test_classification_metrics_numbers():
    metrics = classification_metrics([0, 0, 1, 1, 2, 2], [0, 1, 1, 1, 2, 0])
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    assert metrics["per_class_accuracy"] == {"0": 0.5, "1": 1.0, "2": 0.5}
    assert metrics["confusion_matrix"] == {"labels": ["0", "1", "2"], "matrix": [[1, 1, 0], [0, 2, 0], [1, 0, 1]]}
    assert metrics["macro_f1"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)


def test_suggestions_are_uncertain_unlabelled_and_spread_out():
    x, y = blobs(100, 2, spread=1.5)
    distributions = np.stack([np.linspace(0, 1, 200), 1 - np.linspace(0, 1, 200)], axis=1).astype(np.float32)
    candidates = np.ones(200, dtype=bool)
    candidates[95:105] = False  # the most uncertain rows are already labelled
    chosen = suggest_labels(x, distributions, candidates, 5)
    assert len(set(chosen.tolist())) == 5
    assert candidates[chosen].all()
    assert margin_uncertainty(distributions)[chosen].min() > 0.5
    assert margin_uncertainty(np.array([[0.5, 0.5], [1.0, 0.0]])).tolist() == [1.0, 0.0]


def test_the_reducer_is_a_name_an_object_with_fit_transform_or_a_callable():
    """reduce="umap" | "pca" | "none", any object with fit_transform (cloned per map with its seed when
    it has a random_state), or f(features, seed): propagation and clustering take each the same way."""
    from sklearn.decomposition import PCA

    from vae_tools.latent.clustering import LatentClusterer

    rng = np.random.default_rng(0)
    centres = rng.normal(0, 6, (3, 12))
    y = np.repeat(np.arange(3), 40)
    x = (centres[y] + rng.normal(0, 1, (120, 12))).astype(np.float32)
    given = np.where(hide_labels(y, 0.1, seed=0, stratify=True), y, -1)
    seen = []

    def first_columns(features, seed):
        seen.append(seed)
        return features[:, :4]

    by_name = LabelPropagator(reduce="pca", n_neighbors=8, random_state=3).fit(x, given)
    by_object = LabelPropagator(reduce=PCA(10), n_neighbors=8, random_state=3).fit(x, given)
    np.testing.assert_allclose(by_object.label_distributions_, by_name.label_distributions_, atol=1e-4)
    by_callable = LabelPropagator(reduce=first_columns, n_maps=2, n_neighbors=8, random_state=3).fit(x, given)
    assert seen == [3, 4] and by_callable.n_maps_ == 2
    assert (by_callable.transduction_ == y).mean() > 0.9
    clusters = LatentClusterer(n_clusters=3, reduce=first_columns, random_state=5).fit(x)
    assert seen[-1] == 5 and len(np.unique(clusters.labels_)) == 3
    with pytest.raises(DataError, match="unknown reduction 'tsne'"):
        LabelPropagator(reduce="tsne").fit(x, given)
