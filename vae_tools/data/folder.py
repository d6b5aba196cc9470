"""A folder of image files: class sub-folders give labels, ids are relative paths, decoding is lazy."""

from __future__ import annotations

import contextlib
import os
import warnings
from collections import Counter
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image, UnidentifiedImageError

from vae_tools.errors import DataError
from vae_tools.progress import progress as progress_of

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
_GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}
DEFAULT_MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS


def scan_folder(root: Path) -> list[Path]:
    found, seen = [], {}
    # Class folders are often links to where the images really are: follow them, and refuse a loop.
    for folder, subfolders, files in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            raise DataError(f"{folder}: is the folder {seen[real]} again, through a symbolic link (a loop, or two "
                            "names for one folder); remove the link")
        seen[real] = folder
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith(".") and name.lower().endswith(IMAGE_SUFFIXES):
                found.append(Path(folder) / name)
    return found


class FolderReader:
    """Decodes image files on demand, converting to ``channels`` and resizing to ``size`` where needed."""

    decodes_files = True  # worth DataLoader workers where the model waits for the decoder

    def __init__(self, root: Path, paths: list[Path], channels: int, size: tuple[int, int],
                 native_sizes: Optional[set] = None):
        self.name = str(root)
        self.root = root
        self.paths = paths
        self.shape = (channels, *size)
        self.native_sizes = native_sizes or {tuple(size)}  # (height, width) of the files themselves

    def __len__(self) -> int:
        return len(self.paths)

    def at_size(self, size: tuple[int, int]) -> "FolderReader":
        """The same files, decoded straight to ``size``: a large image is never held at its own size."""
        return FolderReader(self.root, self.paths, self.shape[0], tuple(size), self.native_sizes)

    def read(self, rows: np.ndarray) -> np.ndarray:
        channels, height, width = self.shape
        out = np.empty((len(rows), channels, height, width), dtype=np.float32)
        for i, row in enumerate(rows):
            out[i] = self._decode(self.paths[row])
        return out

    def _decode(self, path: Path) -> np.ndarray:
        channels, height, width = self.shape
        try:
            with open_image(path) as image:
                if image.format == "JPEG" and (image.width >= 2 * width and image.height >= 2 * height):
                    # JPEG decodes at 1/2, 1/4 or 1/8 scale for a fraction of the work, never below ``size``.
                    image.draft(image.mode, (width, height))
                pixels = _to_uint8_mode(image, "RGB" if channels == 3 else "L")
                if pixels.size != (width, height):
                    pixels = pixels.resize((width, height), Image.Resampling.BILINEAR)
                array = np.asarray(pixels, dtype=np.float32) / 255.0
        except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as exc:
            raise DataError(f"{path}: cannot decode image ({exc})") from None
        return array[None] if channels == 1 else array.transpose(2, 0, 1)


def max_image_pixels() -> int:
    """The largest image (width x height) vaetools decodes: VAETOOLS_MAX_IMAGE_PIXELS, by default
    Pillow's own decompression-bomb limit (about 89 million pixels)."""
    text = os.environ.get("VAETOOLS_MAX_IMAGE_PIXELS", "")
    try:
        return int(text) if text else DEFAULT_MAX_IMAGE_PIXELS
    except ValueError:
        raise DataError(f"VAETOOLS_MAX_IMAGE_PIXELS={text!r}: expected a whole number of pixels") from None


@contextlib.contextmanager
def open_image(path: Path):
    """Image.open that refuses, from the header alone, an image too large to decode safely."""
    limit = max_image_pixels()
    previous, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, limit  # Pillow's own check, for this call only
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                width, height = image.size
                if width * height > limit:
                    raise DataError(f"{path}: {width}x{height} is {width * height:,} pixels, over the limit of "
                                    f"{limit:,} (a decompression bomb?); set VAETOOLS_MAX_IMAGE_PIXELS to allow it")
                if width == 0 or height == 0:
                    raise DataError(f"{path}: the image is {width}x{height} pixels")
                yield image
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DataError(f"{path}: {exc}; set VAETOOLS_MAX_IMAGE_PIXELS to allow it") from None
    finally:
        Image.MAX_IMAGE_PIXELS = previous


def _integer_bits(image: Image.Image) -> int:
    """Bits per pixel of an integer image (0 for other modes). Pillow's mode I is 32-bit, but older
    Pillows open 16-bit PNGs in it too: a PNG holds at most 16 bits, a TIFF says how many it holds."""
    if not image.mode.startswith("I"):
        return 0
    if image.mode != "I" or image.format == "PNG":
        return 16
    stored = getattr(image, "tag_v2", {}).get(258) if image.format == "TIFF" else None
    return int(max(stored)) if stored else 32


def _to_uint8_mode(image: Image.Image, mode: str) -> Image.Image:
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        bits = _integer_bits(image)
        if bits > 16:
            raise ValueError(f"{bits}-bit integer pixels say nothing of their scale; store the images as 8-bit "
                             "or 16-bit (0-65535)")
        array = np.asarray(image, dtype=np.float64)
        # One rule for every image, from its format (never the image's own maximum, which would give
        # one pixel value a different brightness in each file): integer modes are 16-bit, floating-point
        # images hold intensities in [0, 1], as scientific and HDR tools write them.
        top = 65535.0 if image.mode.startswith("I") else 1.0
        low, high = (float(array.min()), float(array.max())) if array.size else (0.0, 0.0)
        if not (np.isfinite(low) and np.isfinite(high)) or low < 0 or high > top:
            kind = "16-bit images hold 0-65535" if top > 1 else "floating-point images are read as intensities in [0, 1]"
            raise ValueError(f"pixel values from {low:.4g} to {high:.4g}; {kind}")
        image = Image.fromarray(np.round(array / top * 255.0).astype(np.uint8))
    return image.convert(mode)


def open_folder(root: Path, image_size: Optional[tuple[int, int]], channels: Optional[int]):
    """Returns (reader, ids, labels) for an image folder."""
    paths = scan_folder(root)
    if not paths:
        raise DataError(f"{root}: no image files ({', '.join(IMAGE_SUFFIXES)}) in this folder")
    sizes: Counter = Counter()
    first_of_size: dict = {}
    color = False
    for path in progress_of(paths, desc="reading image headers", enabled=len(paths) >= 5000, unit="file"):
        try:
            with open_image(path) as image:
                size, mode = image.size, image.mode
        except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as exc:
            raise DataError(f"{path}: not a readable image ({exc})") from None
        sizes[size] += 1
        first_of_size.setdefault(size, path)
        color = color or mode not in _GRAY_MODES
    if image_size is None:
        if len(sizes) > 1:
            (a, _), (b, _) = sizes.most_common(2)
            raise DataError(
                f"{root}: images have different sizes ({a[0]}x{a[1]} in {first_of_size[a].name}, "
                f"{b[0]}x{b[1]} in {first_of_size[b].name}); pass `image_size` to resize them all"
            )
        width, height = next(iter(sizes))
        image_size = (height, width)
    reader = FolderReader(root, paths, channels or (3 if color else 1), image_size,
                          {(height, width) for width, height in sizes})
    relative = [p.relative_to(root) for p in paths]
    ids = [p.as_posix() for p in relative]
    labelled = all(len(p.parts) > 1 for p in relative)
    labels = np.array([p.parts[0] for p in relative], dtype=object) if labelled else None
    return reader, ids, labels
