"""MNIST-style IDX files (raw, memory-mapped; or gzip-compressed, read into memory)."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import Optional

import numpy as np

from vae_tools.errors import DataError

_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def is_idx_name(path: Path) -> bool:
    name = path.name.lower()
    return "idx" in name or name.endswith((".ubyte", ".ubyte.gz"))


def read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            head = handle.read(4)
            if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in _IDX_DTYPES:
                raise DataError(f"{path}: not an IDX file (bad magic number)")
            dtype = np.dtype(_IDX_DTYPES[head[2]])
            ndim = head[3]
            header = handle.read(4 * ndim)
            if len(header) != 4 * ndim:
                raise DataError(f"{path}: IDX header is truncated")
            dims = np.frombuffer(header, dtype=">u4")
            shape = tuple(int(d) for d in dims)
            if ndim == 0 or 0 in shape:
                raise DataError(f"{path}: IDX header declares an empty array of shape {shape}")
            offset = 4 + 4 * ndim
            expected = int(np.prod(shape)) * dtype.itemsize
            if opener is open:
                size = path.stat().st_size - offset
                if size < expected:
                    raise DataError(f"{path}: IDX file is truncated ({size} of {expected} data bytes)")
                return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape)
            data = _read_at_most(handle, expected)
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise DataError(f"{path}: cannot read IDX file ({exc})") from None
    if len(data) < expected:
        raise DataError(f"{path}: IDX file is truncated ({len(data)} of {expected} data bytes)")
    return np.frombuffer(data, dtype=dtype).reshape(shape)


def _read_at_most(handle, expected: int, chunk: int = 1 << 24) -> bytes:
    """Read up to ``expected`` bytes in chunks: memory grows with the data really there, never with
    what a (possibly lying) header claims."""
    parts, got = [], 0
    while got < expected:
        part = handle.read(min(chunk, expected - got))
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def find_label_file(images_path: Path) -> Optional[Path]:
    """The labels file that conventionally sits beside an images file (images-idx3 -> labels-idx1)."""
    name = images_path.name
    for old, new in (("images-idx3", "labels-idx1"), ("images.idx3", "labels.idx1"), ("images", "labels")):
        if old in name:
            candidate = images_path.with_name(name.replace(old, new))
            if candidate.exists():
                return candidate
    return None
