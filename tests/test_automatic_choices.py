"""Settings decided from the user's data: the pixel likelihood is chosen from the images' histogram,
recorded with its reason in config.json and printed by `vaetools train`; a user's setting wins."""

import json

import numpy as np
import pytest

from conftest import invoke, make_images, tiny_training
from vae_tools.data.pixel_histogram import GAUSSIAN_FROM, mid_grey_share, pixel_counts


def grey_photos(n=80, size=12, seed=0) -> np.ndarray:
    """Continuous-tone images: smooth random shading over the whole frame, no blank background."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:size, 0:size] / size
    images = []
    for _ in range(n):
        a, b, c = rng.uniform(-1, 1, 3)
        shade = 0.5 + 0.25 * np.sin(3 * (a * rows + b * cols) + c) + rng.normal(0, 0.03, (size, size))
        images.append(np.clip(shade, 0, 1))
    return (np.stack(images) * 255).astype(np.uint8)


def test_the_share_of_mid_grey_pixels_ignores_the_background_whichever_extreme_it_is():
    strokes = np.zeros((10, 10))
    strokes[4:6, 1:9] = 1.0
    strokes[3, 1:9] = 0.5  # an anti-aliased edge
    assert mid_grey_share(pixel_counts(strokes)) == pytest.approx(8 / 24)
    assert mid_grey_share(pixel_counts(1 - strokes)) == pytest.approx(8 / 24)  # dark ink on white paper
    assert mid_grey_share(pixel_counts(np.linspace(0.2, 0.8, 100))) == 1.0
    assert mid_grey_share(pixel_counts(np.zeros(50))) == 0.0


def test_stroke_images_get_bernoulli_and_continuous_tone_images_gaussian(tmp_path):
    strokes, _ = make_images(n=80, size=12, seed=0)
    photos = grey_photos()
    assert mid_grey_share(pixel_counts(strokes / 255.0)) < GAUSSIAN_FROM < mid_grey_share(pixel_counts(photos / 255.0))
    for name, images, expected in (("strokes", strokes, "bernoulli"), ("photos", photos, "gaussian")):
        np.save(tmp_path / f"{name}.npy", images)
        run = tmp_path / f"run_{name}"
        printed = invoke("train", "--data", tmp_path / f"{name}.npy", "--out", run, *tiny_training(1)).output
        config = json.loads((run / "config.json").read_text())
        choice = config["choices"]["likelihood"]
        assert choice["value"] == expected
        assert config["model"]["params"]["likelihood"] == expected and config["training"]["likelihood"] == expected
        assert f"so {expected}" in choice["why"] and "mid-grey" in choice["why"]
        assert f"likelihood: {choice['why']}" in printed


def test_a_likelihood_the_user_sets_is_kept_and_said_to_be_theirs(tmp_path):
    np.save(tmp_path / "photos.npy", grey_photos())
    run = tmp_path / "run"
    printed = invoke("train", "--data", tmp_path / "photos.npy", "--out", run, "--likelihood", "bernoulli",
                     *tiny_training(1)).output
    config = json.loads((run / "config.json").read_text())
    assert config["choices"]["likelihood"] == {"value": "bernoulli", "automatic": False, "why": "set by the user"}
    assert config["model"]["params"]["likelihood"] == "bernoulli"
    assert "likelihood:" not in printed
    # Resuming keeps the stored, already decided configuration and the reasons recorded with it.
    auto_run = tmp_path / "auto"
    invoke("train", "--data", tmp_path / "photos.npy", "--out", auto_run, *tiny_training(1))
    first = json.loads((auto_run / "config.json").read_text())["choices"]["likelihood"]
    invoke("train", "--data", tmp_path / "photos.npy", "--out", auto_run, "--resume", "--epochs", "2", "--quiet")
    assert json.loads((auto_run / "config.json").read_text())["choices"]["likelihood"] == first
