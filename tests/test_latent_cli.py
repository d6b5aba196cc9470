"""`vaetools label-propagate`, `cluster` and `umap`: outputs and user errors."""

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import invoke, make_images, tiny_training
from vae_tools.latent.reducers import GRAPH_MAP_EPOCHS

FAST = tiny_training(20)


run_cli = invoke


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("latent")
    images, labels = make_images(n=120, size=12, seed=5)
    np.savez(root / "bars.npz", x=images, y=labels)
    run_cli("train", "--data", root / "bars.npz", "--out", root / "run", *FAST)
    run_cli("embed", "--model", root / "run", "--data", root / "bars.npz", "--out", root / "emb.parquet", "--quiet")
    return root


def test_label_propagate_from_embeddings_writes_every_output(trained, tmp_path):
    out = tmp_path / "labels"
    # The graph on the features themselves: a UMAP map of 120 points depends on the tiny model's exact
    # latents (0.68 on one machine, above 0.9 on another); the map's value is measured in bench/generalise.py.
    result = run_cli("label-propagate", "--embeddings", trained / "emb.parquet", "--data", trained / "bars.npz",
                     "--labeled", "0.1", "--neighbors", "8", "--reduce", "none", "--out", out, "--suggest", "6")
    assert "accuracy on the unlabelled" in result.output
    predictions = pd.read_csv(out / "predictions.csv", dtype={"id": str})
    assert list(predictions.columns) == ["id", "predicted_label", "confidence", "labelled", "true_label"]
    assert len(predictions) == 120 and predictions["labelled"].sum() == 12
    labelled = predictions[predictions["labelled"]]
    assert (labelled["predicted_label"] == labelled["true_label"]).all()
    metrics = json.loads((out / "metrics.json").read_text())
    hidden = predictions[~predictions["labelled"]]
    assert metrics["accuracy_unlabelled"] == pytest.approx((hidden["predicted_label"] == hidden["true_label"]).mean())
    assert metrics["accuracy_unlabelled"] > 0.9  # bars are easy
    assert np.array(metrics["unlabelled"]["confusion_matrix"]["matrix"]).sum() == 108
    assert set(metrics["unlabelled"]["per_class_accuracy"]) == {"0", "1"}
    assert (out / "confusion.png").stat().st_size > 1000
    assert "LabelSpreading" in metrics["baseline"]["method"]
    assert 0.4 <= metrics["baseline"]["accuracy_unlabelled"] <= 1
    suggestions = pd.read_csv(out / "suggestions.csv", dtype={"id": str})
    assert len(suggestions) == 6 and not suggestions["id"].isin(labelled["id"]).any()
    assert Image.open(out / "suggestions.png").size[0] > 200


def test_label_propagate_with_refinement_from_a_run_folder(trained, tmp_path, monkeypatch):
    import vae_tools.semi_supervised as semi

    monkeypatch.setattr(semi, "MIN_JUDGING_LABELS", 10)  # 48 bars are labelled: judge them as if that were enough
    out = tmp_path / "labels"
    run_cli("label-propagate", "--model", trained / "run", "--data", trained / "bars.npz", "--labeled", "0.4",
            "--stratify", "--neighbors", "8", "--features", "latents", "--refine-rounds", "1", "--refine-epochs", "1",
            "--out", out, "--quiet")
    metrics = json.loads((out / "metrics.json").read_text())
    assert [r["round"] for r in metrics["rounds"]] == [0, 1]
    assert all(0 <= r["accuracy_unlabelled"] <= 1 for r in metrics["rounds"])
    assert all(r["held_back"] == 48 for r in metrics["rounds"])  # every given label judges each round
    kept = [r for r in metrics["rounds"] if r["accepted"]][-1]
    assert metrics["accuracy_unlabelled"] == kept["accuracy_unlabelled"]
    assert metrics["choices"]["features"] == "latents"


def test_label_propagate_records_its_automatic_choices(trained, tmp_path):
    out = tmp_path / "labels"
    result = run_cli("label-propagate", "--model", trained / "run", "--data", trained / "bars.npz", "--labeled", "0.1",
                     "--stratify", "--neighbors", "8", "--out", out, "--quiet")
    metrics = json.loads((out / "metrics.json").read_text())
    choices = metrics["choices"]
    assert choices["features"] in ("latents", "latents+pixels", "pixels")
    assert set(metrics["feature_cv_accuracy"]) == {"latents", "latents+pixels", "pixels"}
    assert "cross-validated" in choices["features_why"]
    assert "too few labels" in choices["refinement"] and len(metrics["rounds"]) == 1
    assert f"features: {choices['features']}" in result.output


def test_label_file_with_string_labels(trained, tmp_path):
    ids = pd.read_parquet(trained / "emb.parquet")["id"]
    labels = pd.DataFrame({"id": ids[:10], "label": ["horizontal" if i % 2 == 0 else "vertical" for i in range(10)]})
    labels.to_csv(tmp_path / "known.csv", index=False)
    run_cli("label-propagate", "--embeddings", trained / "emb.parquet", "--labels", tmp_path / "known.csv",
            "--method", "knn", "--neighbors", "5", "--out", tmp_path / "out")
    predictions = pd.read_csv(tmp_path / "out" / "predictions.csv")
    assert set(predictions["predicted_label"]) <= {"horizontal", "vertical"}
    assert predictions["labelled"].sum() == 10
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["classes"] == ["horizontal", "vertical"]
    assert metrics["accuracy_unlabelled"] == 0  # the truth is 0/1, not these names
    assert not (tmp_path / "out" / "suggestions.csv").exists()


@pytest.mark.parametrize("extra, message, code", [
    (["--labelled", "1.5"], "'1.5' is not in the range (0, 1)", 2),  # refused as the option is read
    (["--labeled", "0"], "'0' is not in the range (0, 1)", 2),
    (["--labeled", "0.01"], "got no labelled sample", 1),
    (["--labeled", "0.5", "--neighbors", "500"], "120 samples are too few for 500 neighbours", 1),
    (["--labels", "{tmp}/unknown.csv"], "unknown.csv: 2 id(s) are not in the data: ghost1, ghost2", 1),
    (["--labels", "{tmp}/nolabel.csv"], "nolabel.csv: needs the columns id and label", 1),
    ([], "give exactly one of --labelled", 1),
    (["--labelled", "5", "--per-class", "1"], "give exactly one of --labelled", 1),
    (["--labelled", "120"], "120 labels of 120 samples leave none to predict", 1),
    (["--per-class", "60"], "has 60 samples: 60 labels per class leave none of it to predict", 1),
    (["--per-class", "0"], "0 is not in the range x>=1", 2),
])
def test_label_propagate_errors(trained, tmp_path, extra, message, code):
    pd.DataFrame({"id": ["0", "ghost1", "ghost2"], "label": [0, 1, 1]}).to_csv(tmp_path / "unknown.csv", index=False)
    pd.DataFrame({"id": ["0"]}).to_csv(tmp_path / "nolabel.csv", index=False)
    args = [a.format(tmp=tmp_path) for a in extra]
    result = run_cli("label-propagate", "--embeddings", trained / "emb.parquet", "--out", tmp_path / "out", *args, ok=False)
    assert result.exit_code == code
    assert message in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out" / "predictions.csv").exists()


@pytest.mark.parametrize("args, kept, per_class", [(["--labelled", "12"], 12, None), (["--per-class", "3"], 6, 3),
                                                  (["--labelled", "0.1"], 12, None)])
def test_label_propagate_keeps_a_share_a_count_or_a_number_per_class(trained, tmp_path, args, kept, per_class):
    run_cli("label-propagate", "--embeddings", trained / "emb.parquet", *args, "--neighbors", "8", "--reduce", "none",
            "--out", tmp_path / "out", "--quiet")
    predictions = pd.read_csv(tmp_path / "out" / "predictions.csv", dtype={"id": str, "true_label": str})
    assert predictions["labelled"].sum() == kept
    if per_class:
        assert predictions[predictions["labelled"]]["true_label"].value_counts().tolist() == [per_class, per_class]
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["n_labelled"] == kept and metrics["labelled_fraction"] == pytest.approx(kept / 120)
    assert metrics["labelled_per_class"] == per_class


def test_label_propagate_needs_labels_in_the_data_for_evaluation(trained, tmp_path):
    frame = pd.read_parquet(trained / "emb.parquet").drop(columns="label")
    frame.to_parquet(tmp_path / "nolabels.parquet")
    result = run_cli("label-propagate", "--embeddings", tmp_path / "nolabels.parquet", "--labeled", "0.1",
                     "--out", tmp_path / "out", ok=False)
    assert "has no labels to hide" in result.output


@pytest.mark.parametrize("method", ["kmeans", "gmm", "hdbscan"])
def test_cluster_outputs(trained, tmp_path, method):
    out = tmp_path / "clusters"
    run_cli("cluster", "--model", trained / "run", "--data", trained / "bars.npz", "--method", method,
            "--clusters", "2", "--examples", "4", "--quiet", "--out", out)
    clusters = pd.read_csv(out / "clusters.csv")
    assert list(clusters.columns) == ["id", "cluster", "probability", "true_label"] and len(clusters) == 120
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"accuracy", "nmi", "ari", "sizes"} <= set(metrics)
    # auto keeps what the conv model's kind calls for, without mapping the other sets
    assert metrics["features"] == "latents+pixels" and "pixel-likelihood model" in metrics["features_why"]
    assert metrics["feature_silhouettes"] == {}
    assert 0 <= metrics["accuracy"] <= 1
    assert sum(metrics["sizes"].values()) == 120
    assert (out / "cluster_examples.png").exists()


def test_cluster_auto_without_a_model_keeps_the_best_separated_set(trained, tmp_path):
    run_cli("cluster", "--embeddings", trained / "emb.parquet", "--data", trained / "bars.npz", "--clusters", "2",
            "--examples", "0", "--quiet", "--out", tmp_path / "c")
    metrics = json.loads((tmp_path / "c" / "metrics.json").read_text())
    assert set(metrics["feature_silhouettes"]) == {"latents", "latents+pixels", "pixels"}
    assert metrics["feature_silhouettes"][metrics["features"]] == max(metrics["feature_silhouettes"].values())


def test_the_photo_model_clusters_its_latents():
    from vae_tools.latent.cluster_features import candidates_for
    from vae_tools.latent.clustering import LatentClusterer
    from vae_tools.models.photo_vae import PhotoVAE

    names, why = candidates_for(LatentClusterer(), "auto", True, 1000, PhotoVAE.preferred_features)
    assert names == ["latents"] and "colour and layout" in why
    assert candidates_for(LatentClusterer(), "pixels", True, 1000, PhotoVAE.preferred_features)[0] == ["pixels"]


def test_cluster_without_images_or_labels_still_writes_the_table(trained, tmp_path):
    frame = pd.read_parquet(trained / "emb.parquet").drop(columns="label")
    frame.to_csv(tmp_path / "e.csv", index=False)
    run_cli("cluster", "--embeddings", tmp_path / "e.csv", "--clusters", "3", "--out", tmp_path / "c")
    metrics = json.loads((tmp_path / "c" / "metrics.json").read_text())
    assert "accuracy" not in metrics and metrics["n_clusters"] == 3
    assert metrics["features"] == "latents" and "not the images" in metrics["features_why"]
    assert not (tmp_path / "c" / "cluster_examples.png").exists()


def test_cluster_reads_the_images_only_for_features_that_use_them(trained, tmp_path, monkeypatch):
    import vae_tools.semi_supervised

    def no_pixels(dataset):
        raise AssertionError("the images were read for their pixels")

    monkeypatch.setattr(vae_tools.semi_supervised, "dataset_pixels", no_pixels)
    run_cli("cluster", "--model", trained / "run", "--data", trained / "bars.npz", "--features", "latents",
            "--clusters", "2", "--examples", "0", "--quiet", "--out", tmp_path / "c")
    metrics = json.loads((tmp_path / "c" / "metrics.json").read_text())
    assert metrics["features"] == "latents" and metrics["features_why"] == "as asked"
    result = run_cli("cluster", "--embeddings", trained / "emb.parquet", "--features", "pixels",
                     "--out", tmp_path / "p", ok=False)
    assert result.exit_code == 1 and "Error: feature set 'pixels' needs the images" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "p").exists()


def test_umap_pictures_coloured_by_label_and_a_joined_column(trained, tmp_path):
    run_cli("label-propagate", "--embeddings", trained / "emb.parquet", "--labeled", "0.2", "--neighbors", "8",
            "--out", tmp_path / "labels")
    out = tmp_path / "umap"
    run_cli("umap", "--embeddings", trained / "emb.parquet", "--data", trained / "bars.npz", "--join",
            tmp_path / "labels" / "predictions.csv", "--color-by", "label", "--color-by", "confidence",
            "--thumbnails", "20", "--out", out)
    table = pd.read_csv(out / "umap.csv")
    assert list(table.columns) == ["id", "x", "y", "label", "confidence"] and len(table) == 120
    assert np.isfinite(table[["x", "y"]].to_numpy()).all()
    for name in ("umap_label.png", "umap_label.svg", "umap_confidence.png", "umap_confidence.svg", "umap_thumbnails.png"):
        assert (out / name).stat().st_size > 1000, name
    assert (out / "umap_label.svg").read_text().lstrip().startswith("<?xml")


def test_umap_unknown_colour_column_is_a_clear_error(trained, tmp_path):
    result = run_cli("umap", "--embeddings", trained / "emb.parquet", "--color-by", "nope", "--out", tmp_path / "u", ok=False)
    assert result.exit_code == 1 and "no column 'nope' to colour by" in result.output
    assert not (tmp_path / "u" / "umap.csv").exists()


def test_umap_thumbnails_sit_in_distinct_cells_and_classes_keep_their_colour_across_maps():
    import pandas as pd

    from vaetools_pipelines.umap_step import class_palette, spread_out

    coords = np.random.default_rng(0).normal(size=(2000, 2)) ** 3  # dense middle, sparse tails
    chosen, cells, grid = spread_out(coords, 50, seed=0)
    assert len(chosen) <= 50 and len({tuple(c) for c in cells}) == len(chosen)  # one image per cell: no overlap
    assert cells.min() >= 0 and cells.max() < grid
    # A class missing from the predictions keeps the colour it has on the true-label map.
    columns = pd.DataFrame({"label": [0, 1, 2, 3], "predicted_label": [0, 0, 2, 3], "cluster": [5, 5, 6, 6]})
    palette = class_palette(columns)
    assert set(palette) == {"0", "1", "2", "3"} and len(set(palette.values())) == 4


def test_a_partitioned_embeddings_folder_is_one_table_for_every_latent_step(trained, tmp_path):
    out = tmp_path / "emb.parquet"
    printed = run_cli("embed", "--model", trained / "run", "--data", trained / "bars.npz", "--out", out,
                      "--partitioned", "--quiet").output
    assert "(one part per process)" in printed
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["_SUCCESS", "part-00000.parquet"]
    whole = pd.read_parquet(trained / "emb.parquet") if (trained / "emb.parquet").is_file() else None
    table = pd.read_parquet(out)
    assert table["id"].is_unique and (whole is None or list(table["id"]) == list(whole["id"]))
    # A part vaetools did not write stays (tests/test_written.py: a wider run's own parts go) and is not read.
    (out / "part-00007.parquet").write_bytes((out / "part-00000.parquet").read_bytes())
    run_cli("embed", "--model", trained / "run", "--data", trained / "bars.npz", "--out", out, "--partitioned", "--quiet")
    assert (out / "part-00007.parquet").exists() and len(pd.read_parquet(out / "part-00000.parquet")) == len(table)
    run_cli("cluster", "--embeddings", out, "--out", tmp_path / "c", "--clusters", "2", "--reduce", "none", "--quiet")
    assert len(pd.read_csv(tmp_path / "c" / "clusters.csv")) == len(table)
    (out / "_SUCCESS").unlink()
    result = run_cli("cluster", "--embeddings", out, "--out", tmp_path / "c2", "--quiet", ok=False)
    assert result.exit_code == 1 and "was not finished" in result.output
    assert "name it NAME.parquet" in run_cli("embed", "--model", trained / "run", "--data", trained / "bars.npz",
                                             "--out", tmp_path / "emb.csv", "--partitioned", ok=False).output


@pytest.fixture
def fake_cuml(monkeypatch):
    """A stand-in for cuml.manifold.UMAP: records what vaetools asks of it and returns the first
    n_components columns, doubled."""
    import sys
    import types

    calls = []

    class FakeUMAP:
        def __init__(self, **kwargs):
            calls.append(kwargs)
            self.n_components = kwargs["n_components"]

        def fit_transform(self, x):
            return x[:, :self.n_components] * 2.0

    manifold = types.ModuleType("cuml.manifold")
    manifold.UMAP = FakeUMAP
    monkeypatch.setitem(sys.modules, "cuml", types.ModuleType("cuml"))
    monkeypatch.setitem(sys.modules, "cuml.manifold", manifold)
    return calls


@pytest.fixture
def blobs_12d(tmp_path):
    """An embeddings table of three well-separated classes in 12 dimensions (more than the 10 of the
    map that cluster and label-propagate build)."""
    rng = np.random.default_rng(0)
    labels = np.repeat(["a", "b", "c"], 60)
    latents = rng.normal(0, 6, size=(3, 12))[np.repeat([0, 1, 2], 60)] + rng.normal(0, 0.5, size=(180, 12))
    table = pd.DataFrame({"id": [f"s{i}" for i in range(180)], "label": labels,
                          **{f"mu_{j}": latents[:, j].astype(np.float32) for j in range(12)}})
    table.to_parquet(tmp_path / "emb.parquet", index=False)
    return tmp_path / "emb.parquet"


def test_cuml_backend_is_one_clear_error_when_not_installed(blobs_12d, tmp_path):
    import sys

    if "cuml" in sys.modules:
        pytest.skip("cuML is installed here")
    for command in (["umap"], ["cluster"], ["label-propagate", "--labelled", "0.2", "--reduce", "umap"]):
        out = tmp_path / command[0]
        result = run_cli(*command, "--embeddings", blobs_12d, "--backend", "cuml", "--out", out, ok=False)
        assert result.exit_code == 1 and "needs RAPIDS cuML" in result.output and result.output.count("\n") == 1
        assert not any(out.glob("*.csv"))


def test_umap_cuml_backend_is_used_when_installed(trained, tmp_path, fake_cuml):
    run_cli("umap", "--embeddings", trained / "emb.parquet", "--backend", "cuml", "--neighbors", "7",
            "--out", tmp_path / "c", "--quiet")
    assert fake_cuml == [{"n_components": 2, "n_neighbors": 7, "min_dist": 0.1, "init": "spectral", "random_state": 0,
                          "n_epochs": None}]  # a picture gets the library's own length
    table = pd.read_csv(tmp_path / "c" / "umap.csv", dtype={"id": str})
    latents = pd.read_parquet(trained / "emb.parquet")
    assert np.allclose(table[["x", "y"]].to_numpy(), latents[["mu_0", "mu_1"]].to_numpy() * 2.0, atol=1e-5)


def test_cluster_and_label_propagate_build_their_10d_map_with_cuml(blobs_12d, tmp_path, fake_cuml):
    run_cli("cluster", "--embeddings", blobs_12d, "--clusters", "3", "--backend", "cuml",
            "--out", tmp_path / "clusters", "--quiet")
    assert fake_cuml[-1] == {"n_components": 10, "n_neighbors": 15, "min_dist": 0.0, "init": "spectral",
                             "random_state": 0, "n_epochs": GRAPH_MAP_EPOCHS}  # a map for a graph, a shorter layout
    metrics = json.loads((tmp_path / "clusters" / "metrics.json").read_text())
    assert metrics["umap_backend"] == "cuml" and metrics["accuracy"] == 1.0

    run_cli("label-propagate", "--embeddings", blobs_12d, "--labelled", "0.2", "--backend", "cuml",
            "--reduce", "umap", "--out", tmp_path / "labels", "--quiet")
    maps = fake_cuml[1:]  # the default ensemble on a small set: one map per seed
    assert [m["random_state"] for m in maps] == [0, 1, 2, 3, 4]
    assert all(m["n_components"] == 10 and m["min_dist"] == 0.0 for m in maps)
    metrics = json.loads((tmp_path / "labels" / "metrics.json").read_text())
    assert metrics["settings"]["umap_backend"] == "cuml" and metrics["accuracy_unlabelled"] == 1.0
    assert metrics["choices"]["maps"] == 5 and "auto" in metrics["choices"]["maps_why"]


def test_label_propagate_maps_option_is_recorded_and_checked(blobs_12d, tmp_path):
    run_cli("label-propagate", "--embeddings", blobs_12d, "--labelled", "0.2", "--reduce", "umap", "--maps", "2",
            "--out", tmp_path / "two", "--quiet")
    metrics = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert metrics["settings"]["maps"] == 2 and metrics["choices"]["maps"] == 2
    assert metrics["choices"]["maps_why"] == "2 map(s), as asked" and metrics["accuracy_unlabelled"] == 1.0
    run_cli("label-propagate", "--embeddings", blobs_12d, "--labelled", "0.2", "--reduce", "none",
            "--out", tmp_path / "none", "--quiet")
    metrics = json.loads((tmp_path / "none" / "metrics.json").read_text())
    assert metrics["choices"]["maps"] == 1 and "no UMAP map" in metrics["choices"]["maps_why"]
    result = run_cli("label-propagate", "--embeddings", blobs_12d, "--labelled", "0.2", "--maps", "0",
                     "--out", tmp_path / "zero", ok=False)
    assert result.exit_code == 2 and "at least one map" in result.output and not (tmp_path / "zero").exists()
