"""Figures shared by the steps: thumbnail sheets and confusion matrices, saved atomically as PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.figure import Figure

from vae_tools.atomic import atomic_path


def new_figure(figsize, rows: int = 1, columns: int = 1, **kwargs):
    """(figure, axes) drawn off screen: a Figure of its own, not pyplot's, so that no backend is
    switched for the whole process and nothing is left open."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(rows, columns, **kwargs)


def to_display(images: np.ndarray) -> np.ndarray:
    """NCHW floats in [0, 1] -> NHW (grey) or NHWC (colour) for imshow."""
    images = np.clip(np.asarray(images, dtype=np.float32), 0, 1)
    return images[:, 0] if images.shape[1] == 1 else images.transpose(0, 2, 3, 1)


def save_figure(fig, path: str | Path, **kwargs) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".").lower() or "png", bbox_inches="tight", **kwargs)
    return path


def _caption(text) -> str:
    """Up to two lines of at most 16 characters (an id, then what is said about it)."""
    return "\n".join(line if len(line) <= 16 else line[:15] + "…" for line in str(text).split("\n")[:2])


def thumbnail_rows(rows: Sequence[tuple[str, np.ndarray, Sequence[str]]], path: str | Path,
                   title: str | None = None, max_columns: int = 12) -> Path:
    """One row per group: (row title, NCHW images, a caption per image; a caption may have two lines)."""
    columns = max(1, min(max_columns, max((len(images) for _, images, _ in rows), default=1)))
    lines = max((str(c).count("\n") + 1 for _, _, captions in rows for c in captions if str(c)), default=0)
    row_height = 1.25 + 0.18 * max(0, lines - 1)
    fig, axes = new_figure((1.2 * columns + 1.4, row_height * len(rows) + 0.5), len(rows), columns, squeeze=False)
    for r, (row_title, images, captions) in enumerate(rows):
        shown = to_display(images[:columns]) if len(images) else []
        for c in range(columns):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if c < len(shown):
                ax.imshow(shown[c], cmap="gray" if shown[c].ndim == 2 else None, vmin=0, vmax=1)
                ax.set_title(_caption(captions[c]), fontsize=8)
        axes[r, 0].set_ylabel(str(row_title)[:22], rotation=0, ha="right", va="center", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=11)
    return save_figure(fig, path, dpi=120)


def confusion_figure(matrix: np.ndarray, labels: Sequence[str], path: str | Path, title: str) -> Path:
    matrix = np.asarray(matrix)
    size = max(5.0, 0.5 * len(labels) + 2)
    fig, ax = new_figure((size, size))
    shares = matrix / np.maximum(matrix.sum(1, keepdims=True), 1)
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    names = [str(v) for v in labels]
    short = max((len(n) for n in names), default=0) <= 3  # single digits read best upright
    ax.set_xticks(range(len(labels)), names, rotation=0 if short else 60, ha="center" if short else "right",
                  fontsize=10)
    ax.set_yticks(range(len(labels)), names, fontsize=10)
    ax.set_xlabel("predicted label", fontsize=10)
    ax.set_ylabel("true label", fontsize=10)
    if len(labels) <= 25:
        for i in range(len(labels)):
            for j in range(len(labels)):
                if matrix[i, j]:
                    ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=9 if len(labels) <= 12 else 7,
                            color="white" if shares[i, j] > 0.5 else "black")
    ax.set_title(title, fontsize=11)
    return save_figure(fig, path, dpi=120)


def tile(images: np.ndarray, columns: int, pad: int = 2) -> np.ndarray:
    """NCHW floats in [0, 1] -> one uint8 picture (H, W) or (H, W, 3): a grid, row by row, with
    white gutters (the pixels themselves, unscaled: a grid of 64 samples stays sharp at any zoom)."""
    images = np.clip(np.asarray(images, dtype=np.float32), 0, 1)
    n, channels, height, width = images.shape
    columns = max(1, min(columns, n))
    rows = -(-n // columns)
    canvas = np.ones((channels, rows * (height + pad) + pad, columns * (width + pad) + pad), np.float32)
    for k in range(n):
        top, left = pad + (k // columns) * (height + pad), pad + (k % columns) * (width + pad)
        canvas[:, top:top + height, left:left + width] = images[k]
    pixels = np.round(canvas * 255).astype(np.uint8)
    return pixels[0] if channels == 1 else pixels.transpose(1, 2, 0)


def save_grid(images: np.ndarray, path: str | Path, columns: int, scale: int = 0) -> Path:
    """A tiled grid as a PNG, enlarged by a whole factor (``scale``; 0: to about 600 pixels wide)
    with nearest-neighbour pixels, so small images are not blurred by the viewer."""
    from PIL import Image

    picture = Image.fromarray(tile(images, columns))
    scale = scale or max(1, 600 // picture.width)
    if scale > 1:
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.Resampling.NEAREST)
    path = Path(path)
    with atomic_path(path) as tmp:
        picture.save(tmp, format="PNG")
    return path
