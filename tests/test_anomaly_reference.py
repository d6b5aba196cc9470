"""Anomaly scores compare an image with normal images -- by default the sample of its training images
that `vaetools train` keeps -- never with the batch it is scored in."""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from conftest import invoke, make_images, one_error_line, tiny_training
from test_rotation_score import scenes, textures
from vae_tools.anomaly import VAEAnomalyDetector, load_reference
from vae_tools.data import load_dataset
from vae_tools.run_folder import REFERENCE_FILE, load_run


def bars(n, seed):
    images, labels = make_images(n=2 * n, size=12, seed=seed)
    return images[labels == 0][:n]


def noise(n, seed, like):
    return np.random.default_rng(seed).integers(0, 256, size=(n, *like.shape[1:])).astype(np.uint8)


KINDS = {"conv": (bars, lambda n, seed, like: noise(n, seed, like)),
         "photo": (lambda n, seed: scenes(n, seed=seed), lambda n, seed, like: textures(n, seed=seed))}


@pytest.fixture(scope="module", params=sorted(KINDS))
def trained(request, tmp_path_factory):
    kind = request.param
    root = tmp_path_factory.mktemp(f"reference-{kind}")
    normal, odd = KINDS[kind]
    np.savez(root / "normal.npz", x=normal(64, 0))
    invoke("train", "--data", root / "normal.npz", "--out", root / "run", "--model", kind, *tiny_training(15))
    return kind, root, normal, odd


def scored(root, name, images, *args):
    np.savez(root / f"{name}.npz", x=images)
    invoke("anomalies", "--model", root / "run", "--data", root / f"{name}.npz", "--out", root / name, "--quiet",
           *args)
    table = pd.read_csv(root / name / "anomalies.csv", dtype={"id": str}).set_index("id")
    ids = load_dataset(root / f"{name}.npz").ids.astype(str)
    return table.loc[ids], json.loads((root / name / "metrics.json").read_text())


def test_training_keeps_a_reference_of_its_images_with_every_part_the_scores_need(trained):
    kind, root, _, _ = trained
    model, _ = load_run(root / "run")
    reference = load_reference(root / "run", model.latent_dim)
    # 64 images less the validation share, every one of them (fewer than the sample's size)
    assert len(reference) == len(reference.parts) and 50 <= len(reference) < 64
    assert reference.described == f"the {len(reference)} training images"
    expected = {"elbo", "iwae", "recon", "kl", "background"} | ({"rotation"} if kind == "photo" else set())
    assert set(reference.parts.columns) == expected and reference.latents.shape[1] == model.latent_dim


def test_an_images_score_does_not_depend_on_the_batch_it_is_scored_in(trained):
    """The same images among 1% anomalies and among 90% anomalies get the same scores and flags, and the
    anomalies rank above the normal images even where they are the majority."""
    kind, root, normal, odd = trained
    new_normal, new_odd = normal(99, 5), odd(90, 6, normal(1, 5))
    few, few_metrics = scored(root, "few", np.concatenate([new_normal, new_odd[:1]]))  # 1% anomalies
    many, many_metrics = scored(root, "many", np.concatenate([new_normal[:10], new_odd]))  # 90% anomalies
    shared_few = np.r_[np.arange(10), 99]  # the first ten normal images and the first anomaly, in each batch
    shared_many = np.arange(11)
    np.testing.assert_allclose(few["score"].to_numpy()[shared_few], many["score"].to_numpy()[shared_many],
                               rtol=1e-4, atol=1e-4)
    assert few_metrics["threshold"] == many_metrics["threshold"]
    assert few["is_anomaly"].to_numpy()[shared_few].tolist() == many["is_anomaly"].to_numpy()[shared_many].tolist()
    truth = np.r_[np.zeros(10), np.ones(90)]
    assert roc_auc_score(truth, many["score"]) > 0.9
    assert many_metrics["choices"]["reference"]["value"].endswith("training images")


def test_a_prefit_detector_on_the_kept_reference_scores_as_the_command_does(trained):
    kind, root, normal, odd = trained
    table, metrics = scored(root, "mixed", np.concatenate([normal(20, 8), odd(4, 9, normal(1, 8))]), "--samples", "4")
    model, _ = load_run(root / "run")
    detector = VAEAnomalyDetector(vae=model, samples=4).fit(load_reference(root / "run", model.latent_dim))
    assert detector.score_ == metrics["score"]
    np.testing.assert_allclose(detector.decision_function(load_dataset(root / "mixed.npz")), table["score"],
                               rtol=1e-5, atol=1e-5)
    assert detector.threshold_ == pytest.approx(metrics["threshold"]["value"])
    assert "estimated with 16 draws of z, these with 4" in metrics["choices"]["reference"]["why"]


def test_normal_images_the_user_names_are_the_reference(trained):
    kind, root, normal, odd = trained
    np.savez(root / "mine.npz", x=normal(30, 11))
    _, metrics = scored(root, "named", np.concatenate([normal(20, 12), odd(3, 13, normal(1, 12))]),
                        "--reference", root / "mine.npz")
    assert metrics["choices"]["reference"]["value"] == f"30 images of {root / 'mine.npz'}"


def test_a_run_folder_without_a_reference_compares_the_images_with_each_other_and_says_so(trained, tmp_path):
    import shutil

    kind, root, normal, odd = trained
    shutil.copytree(root / "run", tmp_path / "old")
    (tmp_path / "old" / REFERENCE_FILE).unlink()
    np.savez(tmp_path / "data.npz", x=np.concatenate([normal(20, 14), odd(3, 15, normal(1, 14))]))
    invoke("anomalies", "--model", tmp_path / "old", "--data", tmp_path / "data.npz", "--out", tmp_path / "a",
           "--quiet")
    reference = json.loads((tmp_path / "a" / "metrics.json").read_text())["choices"]["reference"]
    assert reference["value"] == "the scored images" and "train again" in reference["why"]


def test_a_damaged_reference_is_one_error_line(trained, tmp_path):
    import shutil

    kind, root, normal, _ = trained
    shutil.copytree(root / "run", tmp_path / "run")
    (tmp_path / "run" / REFERENCE_FILE).write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}")
    np.savez(tmp_path / "data.npz", x=normal(5, 16))
    result = invoke("anomalies", "--model", tmp_path / "run", "--data", tmp_path / "data.npz", "--out",
                    tmp_path / "a", ok=False)
    assert REFERENCE_FILE in one_error_line(result, 1) and not (tmp_path / "a" / "anomalies.csv").exists()
