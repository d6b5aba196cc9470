"""`vaetools anomalies`: scores, thresholds, every output file, ground truth cases, the detector API."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from browser import open_page
from conftest import invoke, make_images, tiny_training
from vae_tools.anomaly import VAEAnomalyDetector, choose_threshold
from vae_tools.anomaly.scores import background_nll, compute_scores, neighbourhood_prediction, score_parts
from vae_tools.errors import DataError
from vae_tools.run_folder import load_run
from vae_tools.data import load_dataset
from vae_tools.embedding import embed, latent_matrix

FAST = tiny_training(40)


run_cli = invoke


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A model trained on horizontal bars only; data = 60 horizontal bars + 6 odd images (label 'odd <b>')."""
    root = tmp_path_factory.mktemp("anomalies")
    images, labels = make_images(n=120, size=12, seed=7)
    normal = images[labels == 0]
    np.savez(root / "normal.npz", x=normal)
    run_cli("train", "--data", root / "normal.npz", "--out", root / "run", *FAST)
    rng = np.random.default_rng(1)
    odd = rng.integers(0, 256, size=(6, 12, 12)).astype(np.uint8)  # noise: nothing like a bar
    mixed = np.concatenate([normal, odd])
    mixed_labels = np.array(["bar"] * len(normal) + ["odd <b>"] * len(odd), dtype=object)
    np.savez(root / "mixed.npz", x=mixed, y=mixed_labels.astype(str))
    return root


def test_scores_are_consistent(setup):
    model, _ = load_run(setup / "run")
    data = load_dataset(setup / "mixed.npz")
    parts, latents = score_parts(model, data, samples=8, seed=0)
    assert len(parts) == 66 and latents.shape == (66, 4)
    np.testing.assert_allclose(parts["elbo"], parts["recon"] + parts["kl"], rtol=1e-6)
    assert (parts["kl"] >= 0).all()
    # The importance-weighted bound is tighter than the ELBO on average (per image, Monte Carlo noise can win).
    assert parts["iwae"].mean() < parts["elbo"].mean()
    assert (parts["iwae"] < parts["elbo"] + 0.5).mean() > 0.9
    again, _ = score_parts(model, data, samples=8, seed=0)
    assert np.array_equal(parts["iwae"], again["iwae"])
    table, _, _ = compute_scores(model, data, ["complexity", "latent"], samples=8, seed=0)
    np.testing.assert_allclose(table["complexity"], parts["iwae"] - parts["background"])
    encoded, same_latents = score_parts(model, data, samples=8, seed=0, needs=())  # only encoded: no column
    assert list(encoded.columns) == [] and np.allclose(same_latents, latents, atol=1e-6)


def test_background_model_finds_noise_complex_and_blank_pages_simple(setup):
    model, _ = load_run(setup / "run")
    blank = torch.zeros(1, 1, 12, 12)
    noise = torch.rand(1, 1, 12, 12, generator=torch.Generator().manual_seed(0))
    assert background_nll(model, blank).item() < 0.1 * background_nll(model, noise).item()
    prediction = neighbourhood_prediction(torch.ones(1, 1, 4, 4))
    assert prediction[0, 0, 0, 0].item() == pytest.approx(3.5 / 4)  # a corner has 3 neighbours
    assert prediction[0, 0, 1, 1].item() == pytest.approx(8.5 / 9)


def test_threshold_rules():
    scores = np.r_[np.random.default_rng(0).normal(0, 1, 990), np.full(10, 20.0)]
    auto = choose_threshold(scores)
    assert auto.method == "auto" and 3 < auto.value < 5  # median + 3.5 robust sigmas ignores the outliers
    assert (scores > auto.value).sum() >= 10
    assert choose_threshold(scores, contamination=0.01).value == pytest.approx(np.quantile(scores, 0.99))
    assert choose_threshold(scores, percentile=90).value == pytest.approx(np.percentile(scores, 90))
    assert choose_threshold(scores, value=2.5).value == 2.5
    with pytest.raises(DataError, match="at most one of"):
        choose_threshold(scores, contamination=0.1, value=1)
    with pytest.raises(DataError, match="`contamination` must lie in"):
        choose_threshold(scores, contamination=0.7)


@pytest.mark.parametrize("score", ["complexity", "iwae", "elbo", "recon", "kl", "latent", "knn"])
def test_every_score_writes_every_output(setup, tmp_path, score):
    out = tmp_path / "a"
    result = run_cli("anomalies", "--model", setup / "run", "--data", setup / "mixed.npz", "--score", score,
                     "--samples", "4", "--anomaly-labels", "odd <b>", "--contamination", "0.1", "--out", out, "--quiet")
    assert "images flagged" in result.output
    table = pd.read_csv(out / "anomalies.csv", dtype={"id": str})
    assert list(table.columns[:6]) == ["id", "score", "rank", "is_anomaly", "label", "true_anomaly"]
    assert table["rank"].tolist() == list(range(1, 67))
    assert table["score"].is_monotonic_decreasing
    assert table[score].tolist() == pytest.approx(table["score"].tolist())
    pd.testing.assert_frame_equal(pd.read_parquet(out / "anomalies.parquet").astype({"id": str}), table,
                                  check_dtype=False)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["threshold"]["method"] == "contamination" and metrics["threshold"]["parameter"] == 0.1
    assert metrics["n_anomalies"] == table["is_anomaly"].sum() == 7
    assert metrics["truth"]["n_true_anomalies"] == 6
    assert 0 <= metrics["truth"]["auroc"] <= 1 and 0 <= metrics["truth"]["f1_at_threshold"] <= 1
    assert Image.open(out / "top_anomalies.png").size[0] > 300


def test_noise_images_are_found_by_the_default_score(setup, tmp_path):
    printed = run_cli("anomalies", "--model", setup / "run", "--data", setup / "mixed.npz", "--normal-labels", "bar",
                      "--out", tmp_path / "a", "--quiet").output
    metrics = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert f"background weight {metrics['background_weight']:.3g}: " in printed
    assert metrics["score"] == "adjusted" and metrics["threshold"]["method"] == "auto"
    assert metrics["choices"]["background_weight"]["value"] == metrics["background_weight"]
    assert "95% interval" in metrics["choices"]["background_weight"]["why"]
    assert metrics["truth"]["auroc"] > 0.9


def test_report_is_self_contained_escaped_and_renders_in_chromium(setup, tmp_path):
    out = tmp_path / "a"
    run_cli("anomalies", "--model", setup / "run", "--data", setup / "mixed.npz", "--anomaly-labels", "odd <b>",
            "--top", "5", "--out", out, "--quiet")
    text = (out / "report.html").read_text()
    assert "odd &lt;b&gt;" in text and "odd <b>" not in text
    assert "http://" not in text and "https://" not in text
    images, errors, failed, external, title = open_page(out / "report.html", screenshot=tmp_path / "report.png")
    layout, printed = open_page.layout, open_page.print_layout
    assert layout["scroll"] <= layout["viewport"] and layout["widest"] <= layout["viewport"] + 1, layout
    assert printed["widest"] <= printed["viewport"] + 1, printed  # fits an A4 page when printed
    assert title == "vaetools anomaly report"
    assert len(images) == 1 + 5 * 3  # histogram + image/reconstruction/difference per anomaly
    assert all(complete and width > 0 for _, complete, width in images), images
    assert errors == [] and failed == []
    assert all(ref.startswith("data:") for ref in external)


def test_planted_outliers_check_the_score_without_labelled_anomalies(setup, tmp_path):
    from vae_tools.anomaly.planted import planted_outliers

    images = np.random.default_rng(0).random((5, 1, 12, 12), dtype=np.float32)
    outliers, kinds = planted_outliers(images, 4, seed=1)
    assert list(kinds) == ["inverted", "noise", "inverted", "noise"] and outliers.shape == (4, 1, 12, 12)
    assert any(np.allclose(outliers[0], 1 - image) for image in images)

    out = tmp_path / "p"
    printed = run_cli("anomalies", "--model", setup / "run", "--data", setup / "normal.npz", "--plant", "10",
                      "--percentile", "95", "--out", out, "--quiet").output
    assert "planted outliers:" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    table = pd.read_csv(out / "anomalies.csv")
    assert metrics["n_images"] == 60 and len(table) == 70 and table["planted"].sum() == 10
    assert table.loc[~table["planted"], "is_anomaly"].sum() == 3  # the threshold comes from the data alone
    planted = metrics["planted"]
    assert planted["n"] == 10 and planted["auroc_against_the_data"] > 0.9 and planted["flagged"] >= 8
    assert set(table.loc[table["planted"], "id"].str.slice(0, 8)) == {"planted-"}
    report = (out / "report.html").read_text()
    assert "planted outliers (a check)" in report and "below the threshold" in report
    labelled = run_cli("anomalies", "--model", setup / "run", "--data", setup / "mixed.npz", "--plant", "4",
                       "--normal-labels", "bar", "--out", tmp_path / "l", "--quiet")
    truth = json.loads((tmp_path / "l" / "metrics.json").read_text())["truth"]
    assert truth["n_true_anomalies"] == 6 + 4 and labelled.exit_code == 0


def test_no_anomalies_in_the_truth_and_data_without_labels(setup, tmp_path):
    run_cli("anomalies", "--model", setup / "run", "--data", setup / "normal.npz", "--out", tmp_path / "plain",
            "--percentile", "95", "--quiet")
    table = pd.read_csv(tmp_path / "plain" / "anomalies.csv")
    assert "label" not in table.columns and table["is_anomaly"].sum() == 3
    assert "truth" not in json.loads((tmp_path / "plain" / "metrics.json").read_text())
    assert (tmp_path / "plain" / "report.html").exists()

    run_cli("anomalies", "--model", setup / "run", "--data", setup / "mixed.npz", "--anomaly-labels", "odd <b>",
                     "--split", "all", "--threshold", "1e9", "--out", tmp_path / "none", "--quiet")
    metrics = json.loads((tmp_path / "none" / "metrics.json").read_text())
    assert metrics["n_anomalies"] == 0 and metrics["truth"]["f1_at_threshold"] == 0.0
    np.savez(tmp_path / "allbars.npz", x=np.load(setup / "normal.npz")["x"], y=np.array(["bar"] * 60))
    run_cli("anomalies", "--model", setup / "run", "--data", tmp_path / "allbars.npz", "--normal-labels", "bar",
            "--out", tmp_path / "clean", "--quiet")
    truth = json.loads((tmp_path / "clean" / "metrics.json").read_text())["truth"]
    assert truth["auroc"] is None and "holds no anomalies" in truth["note"]
    assert truth["n_true_anomalies"] == 0 and truth["false_positives"] == truth["n_flagged"]


@pytest.mark.parametrize("args, message, code", [
    (["--normal-labels", "bar", "--anomaly-labels", "odd <b>"], "not both", 1),
    (["--normal-labels", "cat"], "no image has the label(s) cat", 1),
    (["--contamination", "0.9"], "'0.9' is not in the range (0, 0.5)", 2),  # refused as it is read
    (["--percentile", "10", "--threshold", "2"], "at most one of", 1),
])
def test_anomaly_errors(setup, tmp_path, args, message, code):
    result = run_cli("anomalies", "--model", setup / "run", "--data", setup / "mixed.npz", *args,
                     "--out", tmp_path / "a", ok=False)
    assert result.exit_code == code and message in result.output
    assert not (tmp_path / "a" / "anomalies.csv").exists()


def test_labels_on_unlabelled_data_is_a_clear_error(setup, tmp_path):
    result = run_cli("anomalies", "--model", setup / "run", "--data", setup / "normal.npz", "--normal-labels", "bar",
                     "--out", tmp_path / "a", ok=False)
    assert result.exit_code == 1 and "has no labels" in result.output


def test_detector_api():
    images, labels = make_images(n=120, size=12, seed=2)
    detector = VAEAnomalyDetector(epochs=40, latent_dim=4, samples=4, contamination=0.05, batch_size=16)
    detector.fit(images[labels == 0])
    assert detector.labels_.sum() == pytest.approx(3, abs=1)
    odd = np.random.default_rng(3).integers(0, 256, size=(5, 12, 12)).astype(np.uint8)
    scores = detector.decision_function(np.concatenate([images[labels == 0][:20], odd]))
    assert scores[20:].min() > np.median(scores[:20])
    assert detector.predict(odd).tolist() == [1] * 5
    # "auto" on a conv model (no rotation head): the likelihood-based score, and the reason recorded
    assert detector.get_params()["score"] == "auto" and detector.score_ == "adjusted"
    assert "no rotation head" in detector.choices_["score"]["why"]


def test_the_step_and_a_prefit_detector_are_one_scoring_path(setup, tmp_path):
    from vae_tools.anomaly import VAEAnomalyDetector, ground_truth, load_reference, truth_metrics

    run_cli("anomalies", "--model", setup / "run", "--data", setup / "mixed.npz", "--samples", "4", "--seed", "3",
            "--out", tmp_path / "a", "--quiet")
    table = pd.read_csv(tmp_path / "a" / "anomalies.csv", dtype={"id": str}).set_index("id")
    model, _ = load_run(setup / "run")
    data = load_dataset(setup / "mixed.npz")
    detector = VAEAnomalyDetector(vae=model, samples=4, random_state=3).fit(load_reference(setup / "run", 4))
    assert detector.module_ is model  # prefit: nothing was trained
    scores = detector.decision_function(data)
    np.testing.assert_allclose(scores, table.loc[data.ids.astype(str), "score"], rtol=1e-6)
    metrics = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert detector.threshold_ == pytest.approx(metrics["threshold"]["value"])
    truth = ground_truth(data.labels, normal_labels=["bar"])
    found = truth_metrics(truth, scores, detector.predict(data).astype(bool))
    assert found["n_true_anomalies"] == 6 and found["auroc"] > 0.9


def test_the_complexity_weight_is_the_robust_slope_over_the_reference_images():
    from vae_tools.anomaly.scores import complexity_weight

    rng = np.random.default_rng(0)
    background = rng.uniform(10, 50, 400)
    iwae = 5 + 1.4 * background + rng.normal(0, 1, 400)
    fitted = complexity_weight(iwae, background)
    assert fitted["value"] == pytest.approx(1.4, abs=0.02) and "subtracted 1.40 times" in fitted["why"]
    iwae[:12] += 200  # a few anomalies among the reference images barely move it
    assert complexity_weight(iwae, background)["value"] == pytest.approx(1.4, abs=0.05)
    assert complexity_weight(-iwae, background)["value"] == 0.0  # never a negative weight
    assert complexity_weight(iwae, np.full(400, 3.0))["value"] == 1.0  # no spread to fit on: plain subtraction
    vague = complexity_weight(5 + 1.4 * background + rng.normal(0, 40, 400), background)
    assert vague["value"] == 1.0 and "which holds 1, so plain subtraction" in vague["why"]
    # Complex anomalies among the reference images lie outside the typical range and do not set the slope.
    mixed_background = np.r_[rng.normal(30, 0.3, 90), rng.normal(100, 1, 10)]
    mixed_iwae = np.r_[rng.normal(40, 5, 90), rng.normal(160, 5, 10)]
    assert complexity_weight(mixed_iwae, mixed_background)["value"] == 1.0


def test_the_adjusted_score_uses_the_weight_fitted_on_the_reference_images(setup):
    model, _ = load_run(setup / "run")
    normal = load_dataset(setup / "normal.npz")
    detector = VAEAnomalyDetector(vae=model, samples=4).fit(normal)
    fitted = detector.score_parts_
    weight = detector.background_weight_
    assert weight > 0 and detector.fitted_["adjusted"]["value"] == weight
    np.testing.assert_allclose(fitted["adjusted"], fitted["iwae"] - weight * fitted["background"])
    new = detector.score_parts(load_dataset(setup / "mixed.npz"))
    np.testing.assert_allclose(new["adjusted"], new["iwae"] - weight * new["background"])  # not refitted
    assert new["adjusted"].to_numpy()[-6:].min() > np.median(new["adjusted"].to_numpy()[:-6])


def test_a_registered_score_is_a_choice_of_the_command_and_a_column_of_the_table(setup, tmp_path):
    """Adding a score is one declaration: `vaetools anomalies --score NAME` computes it (and only what it
    needs: here the latents, no decoding) and writes it to the table."""
    from vae_tools.anomaly import Score, load_reference, register_score
    from vae_tools.anomaly.score_registry import unregister_score

    def fit_centre(parts, latents, seed):
        return latents.mean(0)

    register_score(Score("distance", "distance of the code from the reference images' mean code", (),
                         lambda parts, latents, centre: np.linalg.norm(latents - centre, axis=1), fit=fit_centre))
    try:
        assert "distance: distance of the code" in " ".join(run_cli("anomalies", "--help").output.split())
        out = tmp_path / "d"
        run_cli("anomalies", "--model", setup / "run", "--data", setup / "mixed.npz", "--score", "distance",
                "--anomaly-labels", "odd <b>", "--out", out, "--quiet")
        table = pd.read_csv(out / "anomalies.csv", dtype={"id": str})
        assert list(table.columns) == ["id", "score", "rank", "is_anomaly", "label", "true_anomaly", "distance"]
        model, _ = load_run(setup / "run")
        latents = latent_matrix(embed(model, load_dataset(setup / "mixed.npz")))
        centre = load_reference(setup / "run", model.latent_dim).latents.mean(0)  # the training images' codes
        expected = np.linalg.norm(latents - centre, axis=1)
        ids = load_dataset(setup / "mixed.npz").ids.astype(str)
        np.testing.assert_allclose(table.set_index("id").loc[ids, "distance"], expected, rtol=1e-4)
        assert json.loads((out / "metrics.json").read_text())["score"] == "distance"
    finally:
        unregister_score("distance")
    assert run_cli("anomalies", "--model", setup / "run", "--data", setup / "mixed.npz", "--score", "distance",
                   "--out", tmp_path / "e", ok=False).exit_code == 2


def test_the_knn_score_leaves_each_reference_image_out_and_finds_far_codes():
    from vae_tools.anomaly.score_registry import get_score

    rng = np.random.default_rng(0)
    reference = rng.normal(0, 1, (200, 3)).astype(np.float32)
    score = get_score("knn")
    index = score.fit(None, reference, 0)
    own = score.compute(None, reference, index)
    from sklearn.neighbors import NearestNeighbors

    others, _ = NearestNeighbors(n_neighbors=6).fit(reference).kneighbors(reference)
    np.testing.assert_allclose(own, others[:, 1:].mean(1), rtol=1e-5)  # itself left out, 5 others kept
    far = score.compute(None, reference[:5] + 10, index)
    assert far.min() > own.max()
    assert score.explain(index)["value"] == 5 and "200 reference images" in score.explain(index)["why"]
    small = score.fit(None, reference[:3], 0)  # fewer reference images than neighbours
    assert score.compute(None, reference[:3], small).shape == (3,)
