"""A CSV of pixels, one image per row, with optional label and id columns (Kaggle's MNIST layout)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from vae_tools.data.arrays import ArrayReader, decode_labels
from vae_tools.errors import DataError

LABEL_COLUMNS = ("label", "labels", "y", "target", "class")
ID_COLUMNS = ("id", "ids", "name", "filename")


def _has_header(path: Path) -> bool:
    """A first line of numbers alone is the first image, not a header."""
    try:
        frame = pd.read_csv(path, header=None, nrows=1, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError):
        return True  # the full read below reports the problem
    cells = frame.iloc[0].tolist() if len(frame) else []
    return not cells or not all(pd.to_numeric(pd.Series(cells), errors="coerce").notna())


def _headerless_columns(path: Path, n_columns: int) -> list:
    """Names for a CSV without a header: all pixels of a square image, or a label then the pixels
    (the layout of the common headerless MNIST CSV files); any other width cannot be told apart."""
    if math.isqrt(n_columns) ** 2 == n_columns:
        return [f"pixel{i}" for i in range(n_columns)]
    if math.isqrt(n_columns - 1) ** 2 == n_columns - 1:
        return ["label", *(f"pixel{i}" for i in range(n_columns - 1))]
    raise DataError(f"{path}: has no header and {n_columns} columns, which is neither a square image nor a label "
                    "and a square image; add a header line naming the label and id columns")


def open_csv(path: Path):
    try:
        header = _has_header(path)
        frame = pd.read_csv(path, header=0 if header else None)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
        raise DataError(f"{path}: cannot read CSV ({str(exc).splitlines()[0]})") from None
    if frame.empty:
        raise DataError(f"{path}: holds a header but no rows of pixels")
    if not header:
        frame.columns = _headerless_columns(path, frame.shape[1])
    lowered = {str(c).lower(): c for c in frame.columns}
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
    values = pixels.to_numpy()
    if np.issubdtype(values.dtype, np.integer):
        # Text has no pixel type: whole numbers in a CSV of pixels are 8-bit, as in every such file.
        if values.min() < 0 or values.max() > 255:
            raise DataError(f"{path}: whole-number pixels must lie in 0-255, found {values.min()} to {values.max()}")
        values = values.astype(np.uint8)
    reader = ArrayReader(values, str(path))
    ids = frame[id_col].astype(str).tolist() if id_col else [str(i) for i in range(len(frame))]
    if id_col and len(set(ids)) != len(ids):
        raise DataError(f"{path}: column {id_col!r} has duplicate ids")
    labels = decode_labels(frame[label_col].to_numpy(), str(path)) if label_col else None
    return reader, ids, labels
