"""The MNIST-family download path, exercised against a local mirror (never the internet)."""

import gzip
import hashlib

import numpy as np
import pytest

from conftest import make_images, write_idx
from vae_tools.data import builtin, load_dataset
from vae_tools.data.builtin import RemoteIdxDataset
from vae_tools.errors import DataError


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """Write a small MNIST-format data set into a mirror folder and register its checksums."""
    folder = tmp_path / "mirror"
    folder.mkdir()
    files = {}
    for split, n in (("train", 30), ("test", 10)):
        images, labels = make_images(n=n, size=28, seed=len(split))
        prefix = "train" if split == "train" else "t10k"
        for kind, array in (("images", images), ("labels", labels.astype(np.uint8))):
            name = f"{prefix}-{kind}-idx{3 if kind == 'images' else 1}-ubyte.gz"
            path = write_idx(folder / name, array)
            files[(split, kind)] = (name, hashlib.md5(path.read_bytes()).hexdigest())
    monkeypatch.setitem(builtin.REMOTE_DATASETS, "mnist", RemoteIdxDataset(("http://127.0.0.1:9/unreachable",), files))
    monkeypatch.setenv("VAETOOLS_DATASET_MIRROR", folder.as_uri())
    monkeypatch.setenv("VAETOOLS_CACHE_DIR", str(tmp_path / "cache"))
    return folder


def test_download_from_a_mirror_verifies_and_caches(mirror, tmp_path):
    data = load_dataset("mnist")
    assert len(data) == 40 and data.shape == (1, 28, 28)
    assert data.ids[0] == "train/0" and data.ids[30] == "test/0"
    cached = sorted(p.name for p in (tmp_path / "cache" / "mnist").iterdir())
    assert cached == ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz",
                      "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]
    for path in mirror.iterdir():  # a second load needs no network or mirror at all
        path.unlink()
    assert len(load_dataset("mnist:test")) == 10


def test_a_corrupted_download_is_discarded_with_a_clear_error(mirror, tmp_path):
    with gzip.open(mirror / "train-images-idx3-ubyte.gz", "ab") as handle:
        handle.write(b"tampered")
    with pytest.raises(DataError, match="checksum mismatch"):
        load_dataset("mnist:train")
    leftovers = list((tmp_path / "cache" / "mnist").glob("train-images*"))
    assert leftovers == []


def test_no_reachable_host_names_the_file_and_the_way_out(mirror, monkeypatch):
    monkeypatch.setenv("VAETOOLS_DATASET_MIRROR", (mirror / "elsewhere").as_uri())
    with pytest.raises(DataError, match="could not download train-images-idx3-ubyte.gz.*VAETOOLS_DATASET_MIRROR"):
        load_dataset("mnist")


def test_a_damaged_cached_file_is_fetched_again(mirror, tmp_path):
    load_dataset("mnist:test")
    cached = tmp_path / "cache" / "mnist" / "t10k-images-idx3-ubyte.gz"
    cached.write_bytes(b"broken")
    assert len(load_dataset("mnist:test")) == 10
    assert cached.read_bytes() == (mirror / "t10k-images-idx3-ubyte.gz").read_bytes()
