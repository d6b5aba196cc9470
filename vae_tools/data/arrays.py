"""Images held in a numpy array (in memory or memory-mapped): layout and pixel-scale inference."""

from __future__ import annotations

import math
import zipfile
from pathlib import Path
from typing import Optional

import numpy as np

from vae_tools.errors import DataError

IMAGE_KEYS = ("x", "X", "images", "image", "imgs", "data", "arr_0")
LABEL_KEYS = ("y", "Y", "labels", "label", "targets", "target", "arr_1")
ID_KEYS = ("ids", "id", "names", "filenames")
SPLITS = ("train", "test")
_SCAN_CHUNK_BYTES = 64 << 20


class ArrayReader:
    """Reads (N, H, W), (N, H, W, C), (N, C, H, W) or flat square (N, H*W) arrays."""

    def __init__(self, array: np.ndarray, name: str, pixel_range: Optional[tuple] = None):
        self.name = name
        self.array = array
        self.layout, self.shape = infer_layout(array, name)
        self.scale = infer_scale(array, name) if pixel_range is None else given_scale(pixel_range, name)

    def __len__(self) -> int:
        return self.array.shape[0]

    def read_stored(self, rows: np.ndarray) -> tuple[np.ndarray, float] | None:
        """(N, C, H, W) pixels in their stored integer type and the value that maps them to [0, 1],
        for callers that convert elsewhere (on a GPU, a uint8 batch is a quarter of the bytes to
        copy); None for floating-point arrays, which gain nothing."""
        if not (np.issubdtype(self.array.dtype, np.integer) or self.array.dtype == bool):
            return None
        return self._arrange(np.asarray(self.array[rows])), self.scale

    def _arrange(self, raw: np.ndarray) -> np.ndarray:
        c, h, w = self.shape
        if self.layout == "flat":
            raw = raw.reshape(len(raw), 1, h, w)
        elif self.layout == "NHW":
            raw = raw[:, None]
        elif self.layout == "NHWC":
            raw = raw.transpose(0, 3, 1, 2)[:, :c]
        elif self.layout == "NCHW":
            raw = raw[:, :c]
        return np.ascontiguousarray(raw)

    def read(self, rows: np.ndarray) -> np.ndarray:
        picked = self.array[rows]
        # One pass from the stored type to float32 in [0, 1] (the same values as converting, then dividing).
        raw = np.divide(picked, np.float32(self.scale), dtype=np.float32) if self.scale != 1.0 \
            else np.asarray(picked, dtype=np.float32)
        return self._arrange(raw)


def infer_layout(array: np.ndarray, name: str) -> tuple[str, tuple[int, int, int]]:
    shape = array.shape
    if array.ndim == 2:
        side = math.isqrt(shape[1])
        if side * side != shape[1]:
            raise DataError(
                f"{name}: a 2-D array needs square images flattened to H*W columns; "
                f"{shape[1]} columns is not a square number"
            )
        return "flat", (1, side, side)
    if array.ndim == 3:
        return "NHW", (1, shape[1], shape[2])
    if array.ndim == 4:
        channel_counts = (1, 3, 4)
        if shape[3] in channel_counts and shape[1] not in channel_counts:
            return "NHWC", (min(shape[3], 3), shape[1], shape[2])
        if shape[1] in channel_counts:
            return "NCHW", (min(shape[1], 3), shape[2], shape[3])
        if shape[3] in channel_counts:
            return "NHWC", (min(shape[3], 3), shape[1], shape[2])
        raise DataError(f"{name}: cannot tell the channel axis of an array of shape {shape} (need 1, 3 or 4 channels)")
    raise DataError(f"{name}: expected images of shape (N, H, W), (N, H, W, C) or (N, C, H, W), got {shape}")


INTEGER_SCALES = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}
UNLIKELY_8BIT_MAX = 32.0  # a float image set whose brightest pixel is below this is not on a 0-255 scale


def given_scale(pixel_range, name: str) -> float:
    """The scale for an explicit ``pixel_range=(0, high)``."""
    try:
        low, high = (float(v) for v in pixel_range)
    except (TypeError, ValueError):
        raise DataError(f"{name}: pixel_range must be two numbers (0, high), got {pixel_range!r}") from None
    if low != 0 or not math.isfinite(high) or high <= 0:
        raise DataError(f"{name}: pixel_range must be (0, high) with high > 0, got {pixel_range!r}")
    return high


def infer_scale(array: np.ndarray, name: str) -> float:
    """The value that maps the array's pixels to [0, 1], from its type (and for floating-point pixels,
    [0, 1] or [0, 255], from their range); rejects NaN, inf and values that are not pixels."""
    if array.size == 0:
        raise DataError(f"{name}: the data set is empty (an array of shape {array.shape} holds no images)")
    if array.dtype in INTEGER_SCALES:
        return INTEGER_SCALES[array.dtype]
    if array.dtype == bool:
        return 1.0
    if np.issubdtype(array.dtype, np.integer):
        # The type names no scale: dividing by 255 or 65,535 as the largest value suggests would read
        # the same pixel 257 times brighter in one file than in another.
        raise DataError(f"{name}: pixels stored as {array.dtype} say nothing of their scale; store them as uint8 "
                        f"(0-255) or uint16 (0-65535), e.g. x.astype(np.uint8), or in Python pass "
                        f"pixel_range=(0, 255)")
    if not np.issubdtype(array.dtype, np.floating):
        raise DataError(f"{name}: pixel values must be numbers, not {array.dtype}")
    low, high = np.inf, -np.inf
    flat = array.reshape(array.shape[0], -1)
    rows_per_chunk = max(1, _SCAN_CHUNK_BYTES // max(1, flat.shape[1] * array.dtype.itemsize))
    for start in range(0, flat.shape[0], rows_per_chunk):
        chunk = np.asarray(flat[start : start + rows_per_chunk])
        if np.issubdtype(chunk.dtype, np.floating):
            bad = ~np.isfinite(chunk)
            if bad.any():
                row = start + int(np.argwhere(bad)[0][0])
                raise DataError(f"{name}: image {row} contains NaN or infinite values")
        low, high = min(low, float(chunk.min())), max(high, float(chunk.max()))
    if low < 0:
        raise DataError(
            f"{name}: pixel values range from {low:.4g} to {high:.4g}; expected intensities in [0, 1] or [0, 255]"
        )
    if high <= 1.0:
        return 1.0
    if np.issubdtype(array.dtype, np.floating) and high < UNLIKELY_8BIT_MAX:
        # Floats that stop at 16 (scikit-learn's digits) or 10 are on a scale of their own: dividing by
        # 255 would train on nearly black images without a word.
        raise DataError(f"{name}: pixel values range from {low:.4g} to {high:.4g}, which is neither [0, 1] nor "
                        f"[0, 255]; rescale them (x / {high:.4g}), or in Python pass pixel_range=(0, {high:.4g})")
    if high <= 255.0:
        return 255.0
    raise DataError(f"{name}: pixel values reach {high:.4g}; expected intensities in [0, 1] or [0, 255]")


def open_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:
        raise DataError(f"{path}: not a numeric .npy array ({exc})") from None
    except Exception as exc:  # numpy raises several types for a corrupt header
        raise DataError(f"{path}: cannot read .npy file ({exc})") from None


def open_npz_member(path: Path, key: str) -> np.ndarray:
    """Memory-map an uncompressed member of an .npz file; compressed members are read into memory."""
    try:
        with zipfile.ZipFile(path) as archive:
            info = archive.getinfo(key + ".npy")
            if info.compress_type == zipfile.ZIP_STORED:
                with archive.open(info) as member:
                    version = np.lib.format.read_magic(member)
                    if version == (1, 0):
                        shape, fortran, dtype = np.lib.format.read_array_header_1_0(member)
                    else:
                        shape, fortran, dtype = np.lib.format.read_array_header_2_0(member)
                    header_len = member.tell()
                if not dtype.hasobject:
                    # The member's data starts after the zip local header and the npy header.
                    with open(path, "rb") as raw:
                        raw.seek(info.header_offset + 26)
                        name_len = int.from_bytes(raw.read(2), "little")
                        extra_len = int.from_bytes(raw.read(2), "little")
                    offset = info.header_offset + 30 + name_len + extra_len + header_len
                    return np.memmap(path, dtype=dtype, mode="r", shape=shape, offset=offset, order="F" if fortran else "C")
        with np.load(path, allow_pickle=False) as data:
            return data[key]
    except DataError:
        raise
    except ValueError as exc:
        raise DataError(f"{path}: key {key!r} is not a numeric array ({exc})") from None
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot read .npz file ({exc})") from None


def npz_keys(path: Path) -> list[str]:
    try:
        with zipfile.ZipFile(path) as archive:
            return [n[:-4] for n in archive.namelist() if n.endswith(".npy")]
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"{path}: not a readable .npz file ({exc})") from None


def pick_key(keys: list[str], candidates: tuple[str, ...], suffix: str = "") -> Optional[str]:
    for candidate in candidates:
        if candidate + suffix in keys:
            return candidate + suffix
    return None


def decode_labels(values: np.ndarray, name: str) -> np.ndarray:
    values = np.asarray(values)
    if values.ndim != 1:
        values = values.reshape(len(values), -1)
        if values.shape[1] != 1:
            raise DataError(f"{name}: labels must be one value per image, got shape {values.shape}")
        values = values[:, 0]
    if values.dtype.kind in "US":
        return values.astype(str).astype(object)
    if values.dtype.kind == "f":
        if not np.isfinite(values).all():
            raise DataError(f"{name}: labels contain NaN or infinite values")
        if np.all(values == np.round(values)):
            return values.astype(np.int64)
    return values
