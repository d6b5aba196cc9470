import gzip
import hashlib
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def make_images(n=60, size=12, seed=0):
    """Two easy classes of uint8 images: horizontal bars (label 0) and vertical bars (label 1)."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, size, size), dtype=np.uint8)
    labels = np.arange(n) % 2
    for i in range(n):
        pos = rng.integers(2, size - 3)
        if labels[i] == 0:
            images[i, pos : pos + 2, 1:-1] = 255
        else:
            images[i, 1:-1, pos : pos + 2] = 255
    noise = rng.integers(0, 30, size=images.shape, dtype=np.uint8)
    return np.maximum(images, noise), labels


def write_idx(path, array):
    codes = {np.dtype(np.uint8): 0x08}
    header = bytes([0, 0, codes[array.dtype], array.ndim]) + struct.pack(">" + "I" * array.ndim, *array.shape)
    payload = header + array.tobytes()
    if str(path).endswith(".gz"):
        with gzip.open(path, "wb") as handle:
            handle.write(payload)
    else:
        path.write_bytes(payload)
    return path


@pytest.fixture
def images_and_labels():
    return make_images()


@pytest.fixture
def npz_file(tmp_path, images_and_labels):
    images, labels = images_and_labels
    path = tmp_path / "bars.npz"
    np.savez(path, x=images, y=labels)
    return path


@pytest.fixture
def image_folder(tmp_path, images_and_labels):
    images, labels = images_and_labels
    root = tmp_path / "folder"
    for i, (image, label) in enumerate(zip(images, labels)):
        target = root / ("horizontal" if label == 0 else "vertical")
        target.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(target / f"img_{i:03d}.png")
    return root


@pytest.fixture
def fast_overrides():
    """Options that keep a test training run to about a second."""
    return ["--epochs", "2", "--batch-size", "16", "--latent-dim", "4", "--set", "hidden_dim=32",
            "--set", "widths=[8, 16]", "--quiet"]


def tiny_training(epochs):
    """Options for a small, quick `vaetools train` in the step tests."""
    return ["--epochs", str(epochs), "--batch-size", "16", "--latent-dim", "4", "--set", "hidden_dim=32",
            "--set", "widths=[8, 16]", "--quiet"]


def invoke(*args, ok=True):
    """Run the CLI in-process; with ``ok`` the command must succeed."""
    from click.testing import CliRunner

    from vaetools_pipelines.cli import main

    result = CliRunner().invoke(main, [str(a) for a in args])
    if ok:
        assert result.exit_code == 0, result.output
    return result


def snapshot(root: Path) -> dict:
    """Every file under ``root`` (links not followed) by its bytes' digest."""
    return {path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(Path(root).rglob("*")) if path.is_file() and not path.is_symlink()}


def one_error_line(result, code=None) -> str:
    """The one `Error:` line a refused command prints (no traceback), with its status when given."""
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code != 0 and (code is None or result.exit_code == code), result.output
    assert "Traceback" not in result.output and len(lines) == 1 and lines[0].startswith("Error:"), result.output
    return lines[0]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Data in three forms and a trained run folder, shared by the tests of a module that only read them."""
    root = tmp_path_factory.mktemp("world")
    images, labels = make_images(n=40, size=12)
    np.savez(root / "bars.npz", x=images, y=labels)
    for i, (image, label) in enumerate(zip(images, labels)):
        folder = root / "images" / ("h" if label == 0 else "v")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{i:02d}.png")
    invoke("train", "--data", root / "bars.npz", "--out", root / "run", *tiny_training(1))
    invoke("embed", "--model", root / "run", "--data", root / "bars.npz", "--out", root / "latents.parquet", "--quiet")
    return root
