"""``load_dataset``: the single entry point behind every data source."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import numpy as np

from vae_tools.data.arrays import (
    ID_KEYS, IMAGE_KEYS, LABEL_KEYS, SPLITS, ArrayReader, decode_labels, npz_keys, open_npy, open_npz_member, pick_key,
)
from vae_tools.data.builtin import BUILTIN_NAMES, open_builtin
from vae_tools.data.csv_pixels import open_csv
from vae_tools.data.dataset import ImageDataset
from vae_tools.data.folder import open_folder
from vae_tools.data.idx import find_label_file, is_idx_name, read_idx
from vae_tools.data.source_help import SOURCE_HELP  # noqa: F401  (re-exported)
from vae_tools.errors import DataError


def load_dataset(
    source: str | os.PathLike,
    image_size: Optional[tuple[int, int] | int] = None,
    channels: Optional[int] = None,
    split: str = "all",
) -> ImageDataset:
    """Open ``source`` as an :class:`ImageDataset`.

    ``image_size`` (int or (H, W)) resizes every image; ``channels`` (1 or 3) converts them;
    ``split`` picks ``train``, ``test`` or ``all`` where the source has a train/test split.
    """
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    if split not in ("all", *SPLITS):
        raise DataError(f"unknown split {split!r}; use all, train or test")
    text = os.fspath(source)
    name, _, suffix = text.partition(":")
    if name.lower() in BUILTIN_NAMES and not Path(text).exists():
        if suffix:
            split = suffix
            if split not in ("all", *SPLITS):
                raise DataError(f"{text}: unknown split {split!r}; use all, train or test")
        reader, ids, labels = open_builtin(name.lower(), split)
        return ImageDataset(reader, ids, labels, channels, image_size)

    path = Path(text).expanduser()
    if not path.exists():
        raise DataError(f"{path}: no such file or folder (expected {SOURCE_HELP})")
    if path.is_dir():
        reader, ids, labels = open_folder(path, image_size, channels)
        return ImageDataset(reader, ids, labels, channels, image_size)
    lower = path.name.lower()
    if lower.endswith(".npz"):
        reader, ids, labels = _open_npz(path, split)
    elif lower.endswith(".npy"):
        reader, ids, labels = ArrayReader(open_npy(path), str(path)), None, None
    elif lower.endswith((".csv", ".csv.gz")):
        reader, ids, labels = open_csv(path)
    elif is_idx_name(path):
        reader, ids, labels = _open_idx(path)
    else:
        raise DataError(f"{path}: unsupported file type (expected {SOURCE_HELP})")
    if split != "all" and not lower.endswith(".npz"):
        raise DataError(f"{path}: this source has no train/test split; use `split`=all")
    if ids is None:
        ids = [str(i) for i in range(len(reader))]
    return ImageDataset(reader, ids, labels, channels, image_size)


def _open_npz(path: Path, split: str):
    keys = npz_keys(path)
    image_key = pick_key(keys, IMAGE_KEYS)
    if image_key is not None:
        if split != "all":
            raise DataError(f"{path}: this file has no train/test split (keys: {', '.join(keys)}); use `split`=all")
        return _npz_part(path, keys, image_key, pick_key(keys, LABEL_KEYS), pick_key(keys, ID_KEYS), prefix="")
    parts = [s for s in SPLITS if pick_key(keys, IMAGE_KEYS, "_" + s)]
    if not parts:
        raise DataError(
            f"{path}: no image array found (keys: {', '.join(keys) or 'none'}; "
            f"expected one of {', '.join(IMAGE_KEYS)}, or x_train/x_test)"
        )
    if split != "all":
        if split not in parts:
            raise DataError(f"{path}: no {split} split (keys: {', '.join(keys)})")
        parts = [split]
    readers, ids, labels = [], [], []
    for part in parts:
        suffix = "_" + part
        reader, part_ids, part_labels = _npz_part(
            path, keys, pick_key(keys, IMAGE_KEYS, suffix), pick_key(keys, LABEL_KEYS, suffix),
            pick_key(keys, ID_KEYS, suffix), prefix=part + "/",
        )
        readers.append(reader)
        ids.extend(part_ids)
        labels.append(part_labels)
    if len(readers) == 1:
        return readers[0], ids, labels[0]
    if any(lab is None for lab in labels):
        labels = [None]
    images = np.concatenate([r.array for r in readers])
    merged_labels = None if labels[0] is None else np.concatenate(labels)
    return ArrayReader(images, str(path)), ids, merged_labels


def _npz_part(path: Path, keys, image_key, label_key, id_key, prefix: str):
    reader = ArrayReader(open_npz_member(path, image_key), f"{path}[{image_key}]")
    labels = None
    if label_key is not None:
        labels = decode_labels(open_npz_member(path, label_key), f"{path}[{label_key}]")
        if len(labels) != len(reader):
            raise DataError(f"{path}: {len(labels)} labels in {label_key!r} for {len(reader)} images in {image_key!r}")
    if id_key is not None:
        ids = [str(i) for i in np.asarray(open_npz_member(path, id_key))]
        if len(ids) != len(reader) or len(set(ids)) != len(ids):
            raise DataError(f"{path}: {id_key!r} must hold one unique id per image")
    else:
        ids = [f"{prefix}{i}" for i in range(len(reader))]
    return reader, ids, labels


def _open_idx(path: Path):
    images = read_idx(path)
    if images.ndim not in (3, 4):
        raise DataError(f"{path}: an IDX image file holds a 3-D array, this one is {images.ndim}-D (a labels file?)")
    reader = ArrayReader(images, str(path))
    labels = None
    label_path = find_label_file(path)
    if label_path is not None:
        labels = decode_labels(read_idx(label_path), str(label_path))
        if len(labels) != len(reader):
            raise DataError(f"{label_path}: {len(labels)} labels for {len(reader)} images in {path.name}")
    return reader, None, labels
