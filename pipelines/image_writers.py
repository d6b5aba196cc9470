"""Write images back in the form they came in: a folder keeps file names and formats, an array file
gives an array file with the same layout and pixel type."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from vae_tools.atomic import atomic_path
from vae_tools.data import ImageDataset
from vae_tools.data.arrays import ArrayReader
from vae_tools.data.folder import FolderReader, open_image


def to_uint8(images: np.ndarray) -> np.ndarray:
    return np.round(np.clip(images, 0, 1) * 255).astype(np.uint8)


def to_layout(images: np.ndarray, layout: str) -> np.ndarray:
    """NCHW -> the source's layout (NHW, NHWC, NCHW or flat)."""
    if layout == "NHW" or (layout == "flat" and images.shape[1] == 1):
        out = images[:, 0]
        return out.reshape(len(out), -1) if layout == "flat" else out
    if layout == "NHWC":
        return images.transpose(0, 2, 3, 1)
    return images


def resized(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """NCHW floats brought to ``size`` (height, width), back to where the model's input size took them."""
    if tuple(images.shape[2:]) == tuple(size):
        return images
    out = F.interpolate(torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)), size=tuple(size),
                        mode="bilinear", antialias=True, align_corners=False)
    return out.clamp_(0, 1).numpy()


def write_like_source(dataset: ImageDataset, images: np.ndarray, out_dir: Path) -> Path:
    """Writes ``images`` (NCHW floats in [0, 1], one per sample of ``dataset``) at the source's own image
    size; returns the file or folder."""
    reader = dataset.reader
    if isinstance(reader, FolderReader):
        return _write_folder(reader, dataset, images, out_dir / "images")
    images = resized(images, reader.shape[1:])
    if isinstance(reader, ArrayReader):
        source_dtype = reader.array.dtype
        if np.issubdtype(source_dtype, np.integer):
            values = np.round(np.clip(images, 0, 1) * reader.scale).astype(source_dtype)
        else:
            values = images.astype(np.float32) * np.float32(reader.scale)
        values = to_layout(values, reader.layout)
        if reader.name.lower().endswith(".npy"):
            return _save_npy(out_dir / "denoised.npy", values)
        return _save_npz(out_dir / "denoised.npz", values, dataset)
    # IDX files, CSV pixels and built-in sets: 8-bit images in an .npz.
    grey = images.shape[1] == 1
    return _save_npz(out_dir / "denoised.npz", to_layout(to_uint8(images), "NHW" if grey else "NHWC"), dataset)


def _write_folder(reader: FolderReader, dataset: ImageDataset, images: np.ndarray, root: Path) -> Path:
    pixels = to_uint8(images)
    for position, row in enumerate(dataset.rows):
        source = reader.paths[row]
        target = root / source.relative_to(reader.root)
        target.parent.mkdir(parents=True, exist_ok=True)
        array = pixels[position, 0] if pixels.shape[1] == 1 else pixels[position].transpose(1, 2, 0)
        image = Image.fromarray(array, mode="L" if array.ndim == 2 else "RGB")
        with open_image(source) as original:
            if original.size != image.size:  # back to the file's own size
                image = image.resize(original.size, Image.Resampling.BILINEAR)
        with atomic_path(target) as tmp:
            fmt = Image.registered_extensions().get(target.suffix.lower(), "PNG")
            image.save(tmp, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return root


def _save_npy(path: Path, values: np.ndarray) -> Path:
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.save(handle, values)
    return path


def _save_npz(path: Path, values: np.ndarray, dataset: ImageDataset) -> Path:
    arrays = {"x": values, "ids": dataset.ids.astype(str)}
    if dataset.has_labels:
        labels = np.asarray(dataset.labels)
        arrays["y"] = labels.astype(str) if labels.dtype == object else labels
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, **arrays)
    return path


def save_images_npz(path: Path, images: dict, **extra) -> Path:
    """Each entry of ``images`` (NCHW floats) as 8-bit images (NHW grey, NHWC colour, as the data
    sources read them; ``x`` is the one `--data` reads), beside any ``extra`` arrays (ids, codes...)."""
    arrays = {name: to_layout(to_uint8(array), "NHW" if array.shape[1] == 1 else "NHWC")
              for name, array in images.items()}
    arrays.update({k: np.asarray(v) for k, v in extra.items()})
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, **arrays)
    return path


def save_png_folder(images: np.ndarray, folder: Path, names) -> Path:
    """One PNG per image (NCHW floats), named ``names``."""
    pixels = to_uint8(images)
    folder.mkdir(parents=True, exist_ok=True)
    for array, name in zip(pixels, names):
        picture = array[0] if array.shape[0] == 1 else array.transpose(1, 2, 0)
        with atomic_path(folder / name) as tmp:
            Image.fromarray(picture).save(tmp, format="PNG")
    return folder
