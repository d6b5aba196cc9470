"""Large images are trained and used at a working size chosen from the planned epochs, the budget and
the pace measured on the device; every later command reads them at that size."""

import json

import numpy as np
import pytest
from PIL import Image

from conftest import invoke
from vae_tools.config import TrainConfig
from vae_tools.data import load_dataset
from vae_tools.run_folder import load_run
from vae_tools.training import working_size as ws


def area_pace(per_pixel):
    """A device whose step costs ``per_pixel`` seconds per pixel of an image."""
    return lambda size: size[0] * size[1] * per_pixel


def test_the_largest_size_whose_planned_epochs_fit_the_budget_is_kept():
    # 10,000 images, 40 epochs, 45 min: an epoch may take 1.125 min, so 0.00614 s an image.
    per_pixel = 0.006 / (64 * 64)  # 64x64 just fits, 96x96 does not
    tried = []

    def pace(size):
        tried.append(size)
        return area_pace(per_pixel)(size)

    choice = ws.working_size(TrainConfig(), (224, 224), 10_000, 40, 45.0, pace)
    assert choice["value"] == [64, 64] and choice["native"] == [224, 224]
    assert tried == [(32, 32), (48, 48), (64, 64), (96, 96)]  # smallest first, stopping at the first too slow
    assert "so 64x64, the largest at which 40 epochs (the basic length) fit in 45 min" in choice["why"]
    # A faster device keeps more pixels; one fast enough keeps the images' own size.
    assert ws.working_size(TrainConfig(), (224, 224), 10_000, 40, 45.0, area_pace(per_pixel / 4))["value"] == [128, 128]
    assert ws.working_size(TrainConfig(), (224, 224), 100, 40, 45.0, area_pace(per_pixel))["value"] == [224, 224]


def test_oblong_images_keep_their_shape_and_a_slow_device_gets_the_smallest_size():
    choice = ws.working_size(TrainConfig(), (300, 400), 10_000, 40, None, area_pace(1.0))
    assert choice["value"] == [32, 43] and "do not fit in 45 min at any" in choice["why"]


def test_the_users_size_and_small_images_are_not_measured():
    def never(size):
        raise AssertionError("measured")

    assert ws.working_size(TrainConfig(image_size=[40, 40]), (224, 224), 10, 40, 45.0, never) == {
        "value": [40, 40], "automatic": False, "why": "set by the user"}
    assert ws.working_size(TrainConfig(), (32, 32), 10, 40, 45.0, never)["value"] == [32, 32]
    assert ws.working_size(TrainConfig(), (28, 28), 10, 40, 45.0, never)["plain"]


def photos(folder, n=24, size=96, seed=0):
    """JPEG photos of two kinds: a warm disc on a cool ground, a cool bar on a warm ground."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    for i in range(n):
        kind = i % 2
        centre = rng.uniform(0.3, 0.7, 2)
        shape = ((yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 < 0.04) if kind == 0 else (abs(yy - centre[0]) < 0.1)
        ground, thing = (np.array([60, 90, 160]), np.array([230, 120, 40]))[::1 if kind == 0 else -1]
        image = np.where(shape[..., None], thing, ground) + rng.normal(0, 12, (size, size, 3))
        (folder / str(kind)).mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(folder / str(kind) / f"{i:03d}.jpg", quality=92)
    return folder


def test_large_photos_train_at_the_working_size_and_every_command_reads_them_at_it(tmp_path, monkeypatch):
    """A device measured too slow for 96x96 trains at 48x48; the images are decoded once at that size;
    embedding and scoring read the 96-px files at it, without a warning."""
    real = ws.working_size
    monkeypatch.setattr("vae_tools.training.trainer.working_size",
                        lambda config, native, n, epochs, minutes, pace: real(
                            config, native, n, epochs, minutes, lambda size: 100.0 if size[0] > 48 else 1e-6))
    data = photos(tmp_path / "photos")
    invoke("train", "--data", data, "--out", tmp_path / "run", "--epochs", "2", "--batch-size", "8", "--latent-dim",
           "4", "--set", "hidden_dim=32", "--set", "widths=[8, 16]", "--quiet")
    model, config = load_run(tmp_path / "run")
    assert tuple(model.image_shape) == (3, 48, 48) and config["preprocessing"]["image_size"] == [48, 48]
    choice = config["choices"]["image_size"]
    assert choice["value"] == [48, 48] and choice["native"] == [96, 96] and "so 48x48" in choice["why"]
    result = invoke("embed", "--model", tmp_path / "run", "--data", data, "--out", tmp_path / "codes.csv")
    assert "Warning" not in result.output
    result = invoke("anomalies", "--model", tmp_path / "run", "--data", data, "--out", tmp_path / "a", "--quiet")
    assert "Warning" not in result.output
    assert json.loads((tmp_path / "a" / "metrics.json").read_text())["n_images"] == 24
    result = invoke("denoise", "--model", tmp_path / "run", "--data", data, "--out", tmp_path / "d")
    assert "written at 48x48, the size the model works at (the files are 96x96)" in result.output
    # Images of a size training never read are still said to be resized.
    photos(tmp_path / "other", n=4, size=64)
    result = invoke("embed", "--model", tmp_path / "run", "--data", tmp_path / "other", "--out", tmp_path / "o.csv")
    assert "holds images of 64x64" in result.output and "resized to 48x48" in result.output


def test_a_folder_read_at_a_working_size_decodes_straight_to_it(tmp_path):
    data = load_dataset(photos(tmp_path / "photos", n=4, size=96))
    small = data.at_size((48, 48))
    assert small.reader.shape == (3, 48, 48) and small.batch(np.arange(4)).shape == (4, 3, 48, 48)
    assert small.load_into_memory(1 << 30) and tuple(small._cache.shape) == (4, 3, 48, 48)
    # The same pixels as reading the folder at that size directly, as later commands do.
    again = load_dataset(tmp_path / "photos", image_size=(48, 48))
    assert np.array_equal(small.batch(np.arange(4)).numpy(), again.batch(np.arange(4)).numpy())


@pytest.mark.parametrize("size", [(40, 40), (64, 80)])
def test_measured_pace_times_a_real_step(size):
    import torch

    from vae_tools.training.trainer import build_model

    config = TrainConfig(model="photo", likelihood="gaussian", hidden_dim=32, widths=[8, 16], latent_dim=4)
    before = torch.random.get_rng_state()
    pace = ws.measured_pace(lambda s: build_model(config, (3, *s)), lambda s: torch.rand(4, 3, *s),
                            torch.device("cpu"))(size)
    assert 0 < pace < 5 and torch.equal(before, torch.random.get_rng_state())  # the caller's draws untouched
