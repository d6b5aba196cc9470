"""``vaetools umap``: a 2-D picture of the latent space, coloured by any column."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.offsetbox import AnnotationBbox, OffsetImage

from pipelines.figures import save_figure, to_display
from pipelines.latent_inputs import ensure_out_dir, images_for, load_latent_inputs
from pipelines.output_set import writes_output_set
from vae_tools.errors import DataError
from vae_tools.latent.projection import umap_2d
from vae_tools.tables import read_table, write_table

# Beyond this many classes a legend is unreadable and a colour bar of codes is no better.
MAX_LEGEND = 30


def colour_columns(base: pd.DataFrame, colour_by: Sequence[str], extra_tables: Sequence[str]) -> pd.DataFrame:
    """Columns to colour by, aligned with ``base['id']``: from the embeddings table itself or from
    extra tables keyed by id (predictions.csv, clusters.csv, anomalies.csv, ...)."""
    columns = base.copy()
    for path in extra_tables:
        table = read_table(path)
        if "id" not in table.columns:
            raise DataError(f"{path}: has no id column to join on")
        table["id"] = table["id"].astype(str)
        table = table.drop_duplicates("id").set_index("id")
        missing = ~base["id"].isin(table.index)
        if missing.all():
            raise DataError(f"{path}: none of its ids are in the embeddings")
        new = [c for c in table.columns if c not in columns.columns]
        columns = columns.join(table[new], on="id")
    for name in colour_by:
        if name not in columns.columns:
            raise DataError(f"no column {name!r} to colour by; available: {', '.join(c for c in columns.columns if not c.startswith(('mu_', 'logvar_')))}")
    return columns


def scatter(coords: np.ndarray, values: Optional[pd.Series], title: str, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7.5, 6.5))
    size = max(0.5, min(12.0, 4000 / max(len(coords), 1)))
    if values is None:
        ax.scatter(coords[:, 0], coords[:, 1], s=size, c="#4060a0", linewidths=0)
    elif pd.api.types.is_numeric_dtype(values) and (values.nunique() > MAX_LEGEND or pd.api.types.is_float_dtype(values)):
        points = ax.scatter(coords[:, 0], coords[:, 1], s=size, c=values.to_numpy(dtype=float), cmap="viridis", linewidths=0)
        fig.colorbar(points, ax=ax, label=values.name)
    else:
        categories = values.astype(str).fillna("?")
        names = sorted(categories.unique(), key=lambda v: (len(v), v))
        cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
        for i, name in enumerate(names):
            members = (categories == name).to_numpy()
            ax.scatter(coords[members, 0], coords[members, 1], s=size, color=cmap(i % cmap.N), linewidths=0,
                       label=name if len(names) <= MAX_LEGEND else None)
        if len(names) <= MAX_LEGEND:
            ax.legend(title=values.name, markerscale=max(1.0, 6 / size), fontsize=7, loc="best", frameon=False)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=10)
    save_figure(fig, path.with_suffix(".png"), close=False, dpi=130)
    save_figure(fig, path.with_suffix(".svg"))


def thumbnails(coords: np.ndarray, images: np.ndarray, positions: np.ndarray, path: Path, title: str) -> None:
    fig, ax = plt.subplots(figsize=(10, 10))
    ax.scatter(coords[:, 0], coords[:, 1], s=1, c="#c0c0c0", linewidths=0)
    shown = to_display(images)
    zoom = 0.9 * 28 / max(shown.shape[1:3])
    for image, pos in zip(shown, positions):
        box = OffsetImage(image, cmap="gray" if image.ndim == 2 else None, zoom=zoom)
        ax.add_artist(AnnotationBbox(box, coords[pos], frameon=False, pad=0))
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=10)
    save_figure(fig, path, dpi=130)


def spread_out(coords: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Up to ``n`` positions whose points do not overlap much: one per cell of a coarse grid."""
    cells = max(2, int(np.sqrt(n) * 1.4))
    span = np.ptp(coords, axis=0) + 1e-9
    cell = np.floor((coords - coords.min(0)) / span * (cells - 1e-6)).astype(int)
    keys = cell[:, 0] * cells + cell[:, 1]
    order = np.random.default_rng(seed).permutation(len(coords))
    _, first = np.unique(keys[order], return_index=True)
    chosen = order[first]
    return chosen[:n]


@writes_output_set
def run_umap(
    out: str | Path,
    embeddings: Optional[str] = None,
    model_dir: Optional[str] = None,
    data: Optional[str] = None,
    colour_by: Sequence[str] = (),
    join: Sequence[str] = (),
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    n_thumbnails: int = 150,
    split: str = "all",
    device: str = "auto",
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Writes umap.csv (id, x, y and the colour columns), umap_<column>.png/.svg per colour column
    (the true label by default when known) and, with images, umap_thumbnails.png."""
    inputs = load_latent_inputs(embeddings, model_dir, data, split, device, progress)
    base = inputs.frame[["id"] + (["label"] if "label" in inputs.frame.columns else [])
                       + [c for c in inputs.frame.columns if c in ("neg_elbo", "recon_nll", "kl")]]
    colour_by = (["label"] if inputs.labels is not None and "label" not in colour_by else []) + list(colour_by)
    columns = colour_columns(base, colour_by, join)
    coords = umap_2d(inputs.latents, n_neighbors=n_neighbors, min_dist=min_dist, seed=seed)
    out = ensure_out_dir(out)
    table = pd.DataFrame({"id": inputs.ids, "x": coords[:, 0], "y": coords[:, 1]})
    for name in colour_by:
        table[name] = columns[name].to_numpy()
    write_table(table, out / "umap.csv")
    written = ["umap.csv"]
    if not colour_by:
        scatter(coords, None, f"UMAP of {len(coords)} latents", out / "umap")
        written += ["umap.png", "umap.svg"]
    for name in colour_by:
        scatter(coords, columns[name].rename(name), f"UMAP of {len(coords)} latents, coloured by {name}", out / f"umap_{name}")
        written += [f"umap_{name}.png", f"umap_{name}.svg"]
    if inputs.dataset is not None and n_thumbnails > 0:
        chosen = spread_out(coords, n_thumbnails, seed)
        thumbnails(coords, images_for(inputs, chosen), chosen, out / "umap_thumbnails.png",
                   f"UMAP of {len(coords)} latents with example images")
        written.append("umap_thumbnails.png")
    return {"n_samples": int(len(coords)), "files": written}
