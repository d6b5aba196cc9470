"""Built-in data sets: scikit-learn's bundled digits (offline) and the MNIST family (downloaded once)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vae_tools.data.arrays import ArrayReader
from vae_tools.data.download import cache_dir, fetch
from vae_tools.data.idx import read_idx
from vae_tools.errors import DataError


@dataclass(frozen=True)
class RemoteIdxDataset:
    base_urls: tuple[str, ...]
    files: dict  # (split, "images" | "labels") -> (filename, md5)


_IDX_NAMES = {
    ("train", "images"): "train-images-idx3-ubyte.gz",
    ("train", "labels"): "train-labels-idx1-ubyte.gz",
    ("test", "images"): "t10k-images-idx3-ubyte.gz",
    ("test", "labels"): "t10k-labels-idx1-ubyte.gz",
}


def _idx_files(md5s: tuple[str, str, str, str]) -> dict:
    return {key: (name, md5) for (key, name), md5 in zip(_IDX_NAMES.items(), md5s)}


REMOTE_DATASETS = {
    "mnist": RemoteIdxDataset(
        ("https://ossci-datasets.s3.amazonaws.com/mnist", "https://storage.googleapis.com/cvdf-datasets/mnist"),
        _idx_files(("f68b3c2dcbeaaa9fbdd348bbdeb94873", "d53e105ee54ea40749a09fcbcd1e9432",
                    "9fb629c4189551a2d022fa330f9573f3", "ec29112dd5afa0611ce80d1b7f02629c")),
    ),
    "fashion-mnist": RemoteIdxDataset(
        ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com",),
        _idx_files(("8d4fb7e6c68d591d4c3dfef9ec88bf0d", "25c81989df183df01b3e8a0aad5dffbe",
                    "bef4ecab320f06d8554ea6380940ec79", "bb300cfdad3c16e7a12a480ee83cd310")),
    ),
    "kmnist": RemoteIdxDataset(
        ("http://codh.rois.ac.jp/kmnist/dataset/kmnist",),
        _idx_files(("bdb82020997e1d708af4cf47b453dcf7", "e144d726b3acfaa3e44228e80efcd344",
                    "5c965bf0a639b31b8f53240b1b52f4d7", "7320c461ea6c1c855c0b718fb2a4b134")),
    ),
}

BUILTIN_NAMES = ("digits", *REMOTE_DATASETS)


def open_builtin(name: str, split: str):
    """Returns (reader, ids, labels) for a built-in data set; ``split`` is train, test or all."""
    if name == "digits":
        if split != "all":
            raise DataError("digits: this data set has no train/test split; use `split`=all")
        from sklearn.datasets import load_digits

        digits = load_digits()
        images = (digits.images / 16.0).astype(np.float32)
        return ArrayReader(images, "digits"), [str(i) for i in range(len(images))], digits.target.astype(np.int64)
    spec = REMOTE_DATASETS[name]
    splits = ("train", "test") if split == "all" else (split,)
    images, labels, ids = [], [], []
    for part in splits:
        arrays = {}
        for kind in ("images", "labels"):
            filename, md5 = spec.files[(part, kind)]
            arrays[kind] = read_idx(fetch(spec.base_urls, filename, md5, cache_dir() / name / filename))
        images.append(arrays["images"])
        labels.append(arrays["labels"].astype(np.int64))
        ids.extend(f"{part}/{i}" for i in range(len(arrays["images"])))
    return ArrayReader(np.concatenate(images), name), ids, np.concatenate(labels)
