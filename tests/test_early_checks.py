"""Options are checked over their whole range where they are read (command line, --set, pipeline
files), before any step runs; and what the hostile-user pass found as tracebacks is one line."""

import numpy as np
import pytest
from PIL import Image

from conftest import invoke, make_images, one_error_line, tiny_training


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("early")
    images, labels = make_images(n=60, size=12)
    np.savez(root / "bars.npz", x=images, y=labels)
    return root / "bars.npz"


@pytest.mark.parametrize("step, option, value", [
    ("anomalies", "contamination", "0.7"), ("anomalies", "contamination", "0.5"),
    ("label-propagate", "labelled", "1.5"), ("label-propagate", "labelled", "0"),
])
def test_an_out_of_range_value_in_a_pipelines_last_step_fails_before_training(data, tmp_path, step, option, value):
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text(f"data: {data}\nsteps:\n  - train: {{epochs: 1, batch_size: 16, latent_dim: 4}}\n"
                        f"  - embed\n  - {step}: {{{option}: {value}}}\n")
    line = one_error_line(invoke("run", pipeline, "--out", tmp_path / "run", ok=False))
    assert f"step {step}" in line and "is not in the range" in line
    assert not (tmp_path / "run").exists()
    line = one_error_line(invoke("chain", "--data", data, "--out", tmp_path / "c", "train", "--epochs", "1", "embed",
                                 step, f"--{option}", value, ok=False))
    assert "is not in the range" in line and not (tmp_path / "c").exists()


def test_a_budget_of_any_size_trains_without_overflow(data, tmp_path):
    invoke("train", "--data", data, "--out", tmp_path / "r", *tiny_training(2), "--budget-minutes", "1e308")
    assert (tmp_path / "r" / "model.safetensors").is_file()


def test_pixel_features_without_the_images_are_one_line(data, tmp_path):
    invoke("train", "--data", data, "--out", tmp_path / "r", *tiny_training(1))
    invoke("embed", "--model", tmp_path / "r", "--data", data, "--out", tmp_path / "e.parquet", "--quiet")
    for command in (["label-propagate", "--labelled", "0.3"], ["cluster"]):
        line = one_error_line(invoke(*command, "--embeddings", tmp_path / "e.parquet", "--features", "pixels",
                                     "--out", tmp_path / "o", ok=False))
        assert "needs the images, not only their latents" in line and "--data" in line
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("mode, dtype, values, refused", [
    ("I", np.int32, (30, 220), True),  # 32-bit integers: no scale to read them by
    ("I;16", np.uint16, (300, 60000), False),
    ("F", np.float32, (0.1, 0.9), False),
])
def test_integer_tiffs_are_read_by_their_bit_depth(tmp_path, mode, dtype, values, refused):
    for i in range(6):
        folder = tmp_path / "tiffs" / "ab"[i % 2]
        folder.mkdir(parents=True, exist_ok=True)
        pixels = np.random.default_rng(i).uniform(*values, size=(12, 12)).astype(dtype)
        Image.fromarray(pixels).save(folder / f"{i}.tif")
    from vae_tools.data import load_dataset
    from vae_tools.errors import DataError

    if refused:
        with pytest.raises(DataError, match="32-bit integer pixels say nothing of their scale"):
            load_dataset(str(tmp_path / "tiffs")).batch(np.arange(6))
        line = one_error_line(invoke("train", "--data", tmp_path / "tiffs", "--out", tmp_path / "r", *tiny_training(1),
                                     ok=False))
        assert ".tif" in line and not (tmp_path / "r").exists()
    else:
        top = 65535.0 if mode == "I;16" else 1.0
        first = np.asarray(Image.open(tmp_path / "tiffs" / "a" / "0.tif"), dtype=np.float64) / top
        dataset = load_dataset(str(tmp_path / "tiffs"))
        assert str(dataset.ids[0]).endswith("0.tif")
        assert abs(float(dataset.batch(np.array([0])).mean()) - first.mean()) < 0.01
