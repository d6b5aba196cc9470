"""A CSV of pixels, one image per row, with optional label and id columns (Kaggle's MNIST layout)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from vae_tools.data.arrays import ArrayReader, decode_labels
from vae_tools.errors import DataError

LABEL_COLUMNS = ("label", "labels", "y", "target", "class")
ID_COLUMNS = ("id", "ids", "name", "filename")


def open_csv(path: Path):
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
        raise DataError(f"{path}: cannot read CSV ({str(exc).splitlines()[0]})") from None
    if frame.empty:
        raise DataError(f"{path}: holds a header but no rows of pixels")
    lowered = {c.lower(): c for c in frame.columns}
    label_col = next((lowered[c] for c in LABEL_COLUMNS if c in lowered), None)
    id_col = next((lowered[c] for c in ID_COLUMNS if c in lowered), None)
    pixel_cols = [c for c in frame.columns if c not in (label_col, id_col)]
    if not pixel_cols:
        raise DataError(f"{path}: no pixel columns")
    pixels = frame[pixel_cols]
    non_numeric = [c for c in pixel_cols if not pd.api.types.is_numeric_dtype(pixels[c])]
    if non_numeric:
        raise DataError(f"{path}: column {non_numeric[0]!r} is not numeric (pixel columns must hold numbers)")
    if pixels.isna().to_numpy().any():
        row = int(np.argwhere(pixels.isna().to_numpy())[0][0])
        raise DataError(f"{path}: row {row + 2} has an empty or NaN pixel value")
    reader = ArrayReader(pixels.to_numpy(), str(path))
    ids = frame[id_col].astype(str).tolist() if id_col else [str(i) for i in range(len(frame))]
    if id_col and len(set(ids)) != len(ids):
        raise DataError(f"{path}: column {id_col!r} has duplicate ids")
    labels = decode_labels(frame[label_col].to_numpy(), str(path)) if label_col else None
    return reader, ids, labels
