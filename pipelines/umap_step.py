"""``vaetools umap``: a 2-D picture of the latent space, coloured by any column."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence

import click

from vae_tools.latent.defaults import MIN_DIST, NEIGHBORS
from vaetools_pipelines import common_options as common
from vaetools_pipelines.output_set import writes_output_set
from vaetools_pipelines.sections import Section
from vaetools_pipelines.step_api import Step, option
from vaetools_pipelines.steps import from_embeddings, output_of

if TYPE_CHECKING:  # for the annotations only: the modules load when a step runs
    import numpy as np
    import pandas as pd

# Beyond this many classes a legend is unreadable and a colour bar of codes is no better.
MAX_LEGEND = 30


@dataclass(frozen=True)
class UmapParameters(common.LatentSource):
    colour_by: tuple = option((), flags=("--colour-by", "--color-by"), multiple=True, metavar="COLUMN",
                              help="Also colour by this column (repeatable): a column of a --join table such as "
                                   "predicted_label, cluster, or neg_elbo. The true label is always drawn when known.")
    join: tuple = option((), multiple=True, type=click.Path(dir_okay=False), metavar="TABLE", reads=True,
                         help="A table keyed by id whose columns can colour the map (predictions.csv, clusters.csv, ...).")
    n_neighbors: int = option(NEIGHBORS, flags=("--neighbors",), type=click.IntRange(min=2),
                              help="Neighbours per point in UMAP's graph: more keeps more of the global layout.")
    min_dist: float = option(MIN_DIST, type=click.FloatRange(min=0),
                             help="How close points may lie in the map: more spreads them out evenly.")
    n_thumbnails: int = option(150, flags=("--thumbnails",), type=click.IntRange(min=0),
                               help="Images drawn at their positions in umap_thumbnails.png (needs --data).")
    backend: str = common.umap_backend()
    seed: int = common.seed()
    quiet: bool = common.quiet()


def colour_columns(base: pd.DataFrame, colour_by: Sequence[str], extra_tables: Sequence[str]) -> pd.DataFrame:
    """Columns to colour by, aligned with ``base['id']``: from the embeddings table itself or from
    extra tables keyed by id (predictions.csv, clusters.csv, anomalies.csv, ...)."""
    from vae_tools.errors import DataError
    from vae_tools.tables import read_table

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


CLASS_COLUMNS = ("label", "predicted_label", "true_label")  # the same classes: the same colour on every map


def _class_order(values) -> list:
    return sorted({str(v) for v in values}, key=lambda v: (len(v), v))


def class_palette(columns: pd.DataFrame) -> dict:
    """One colour per class, shared by every map coloured by a label column."""
    import pandas as pd

    present = [columns[c].dropna() for c in CLASS_COLUMNS if c in columns.columns]
    names = _class_order(pd.concat(present)) if present else []
    return palette_for(names)


def palette_for(names: list) -> dict:
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if len(names) <= 10 else "tab20"]
    return {name: cmap(i % cmap.N) for i, name in enumerate(names)}


def scatter(coords: np.ndarray, values: Optional[pd.Series], title: str, path: Path,
            palette: Optional[dict] = None) -> None:
    import pandas as pd

    from vaetools_pipelines.figures import new_figure, save_figure

    fig, ax = new_figure((7.5, 6.5))
    size = max(0.5, min(12.0, 4000 / max(len(coords), 1)))
    if values is None:
        ax.scatter(coords[:, 0], coords[:, 1], s=size, c="#4060a0", linewidths=0)
    elif pd.api.types.is_numeric_dtype(values) and (values.nunique() > MAX_LEGEND or pd.api.types.is_float_dtype(values)):
        points = ax.scatter(coords[:, 0], coords[:, 1], s=size, c=values.to_numpy(dtype=float), cmap="viridis", linewidths=0)
        fig.colorbar(points, ax=ax, label=values.name)
    else:
        categories = values.astype(str).fillna("?")
        names = _class_order(categories.unique())
        colours = palette if palette and set(names) <= set(palette) else palette_for(names)
        for name in names:
            members = (categories == name).to_numpy()
            ax.scatter(coords[members, 0], coords[members, 1], s=size, color=colours[name], linewidths=0,
                       label=name if len(names) <= MAX_LEGEND else None)
        if len(names) <= MAX_LEGEND:
            ax.legend(title=values.name.replace("_", " "), markerscale=max(1.0, 6 / size), fontsize=9, loc="center left",
                      bbox_to_anchor=(1.0, 0.5), frameon=False)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=10)
    save_figure(fig, path.with_suffix(".png"), dpi=130)
    save_figure(fig, path.with_suffix(".svg"))


THUMBNAIL_FIGURE_INCHES, THUMBNAIL_DPI = 10, 130


def thumbnails(coords: np.ndarray, images: np.ndarray, cells: np.ndarray, grid: int, path: Path, title: str) -> None:
    """Each image in its own cell of a ``grid`` x ``grid`` lattice over the map (the cell of its point),
    sized to the cell, so no two overlap; the map's points stay visible beneath."""
    import numpy as np
    from matplotlib.offsetbox import AnnotationBbox, OffsetImage

    from vaetools_pipelines.figures import new_figure, save_figure, to_display

    fig, ax = new_figure((THUMBNAIL_FIGURE_INCHES, THUMBNAIL_FIGURE_INCHES))
    low, span = coords.min(0), np.ptp(coords, axis=0) + 1e-9
    unit = (coords - low) / span * grid
    ax.scatter(unit[:, 0], unit[:, 1], s=1, c="#c0c0c0", linewidths=0)
    shown = to_display(images)
    cell_pixels = THUMBNAIL_FIGURE_INCHES * THUMBNAIL_DPI * ax.get_position().width / grid
    # OffsetImage draws an image pixel as zoom * dpi / 72 screen pixels.
    zoom = 0.9 * cell_pixels / (max(shown.shape[1:3]) * THUMBNAIL_DPI / 72)
    for image, (column, row) in zip(shown, cells):
        box = OffsetImage(image, cmap="gray" if image.ndim == 2 else None, zoom=zoom)
        ax.add_artist(AnnotationBbox(box, (column + 0.5, row + 0.5), frameon=False, pad=0))
    ax.set_xlim(0, grid)
    ax.set_ylim(0, grid)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=11)
    save_figure(fig, path, dpi=THUMBNAIL_DPI)


def spread_out(coords: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Up to ``n`` positions, one per occupied cell of a coarse grid over the map: (positions, their
    cells as (column, row), the grid's size)."""
    import numpy as np

    grid = max(2, int(np.sqrt(n) * 1.4))
    span = np.ptp(coords, axis=0) + 1e-9
    cell = np.minimum(np.floor((coords - coords.min(0)) / span * grid).astype(int), grid - 1)
    keys = cell[:, 0] * grid + cell[:, 1]
    order = np.random.default_rng(seed).permutation(len(coords))
    _, first = np.unique(keys[order], return_index=True)
    chosen = order[first][:n]
    return chosen, cell[chosen], grid


@writes_output_set
def run(p: UmapParameters) -> dict:
    """Writes umap.csv (id, x, y and the colour columns), umap_<column>.png/.svg per colour column
    (the true label by default when known) and, with images, umap_thumbnails.png."""
    import pandas as pd

    from vae_tools.latent.projection import umap_2d
    from vae_tools.tables import write_table
    from vaetools_pipelines.latent_inputs import ensure_out_dir, images_for, load_latent_inputs

    inputs = load_latent_inputs(p.embeddings, p.model_dir, p.data, p.split, p.device, not p.quiet)
    base = inputs.frame[["id"] + (["label"] if "label" in inputs.frame.columns else [])
                       + [c for c in inputs.frame.columns if c in ("neg_elbo", "recon_nll", "kl")]]
    colour_by = (["label"] if inputs.labels is not None and "label" not in p.colour_by else []) + list(p.colour_by)
    columns = colour_columns(base, colour_by, p.join)
    coords = umap_2d(inputs.latents, n_neighbors=p.n_neighbors, min_dist=p.min_dist, seed=p.seed, backend=p.backend)
    out = ensure_out_dir(p.out)
    table = pd.DataFrame({"id": inputs.ids, "x": coords[:, 0], "y": coords[:, 1]})
    for name in colour_by:
        table[name] = columns[name].to_numpy()
    write_table(table, out / "umap.csv")
    written = ["umap.csv"]
    if not colour_by:
        scatter(coords, None, f"UMAP of {len(coords)} latents", out / "umap")
        written += ["umap.png", "umap.svg"]
    palette = class_palette(columns)
    for name in colour_by:
        scatter(coords, columns[name].rename(name), f"UMAP of {len(coords)} latents, coloured by "
                f"{name.replace('_', ' ')}", out / f"umap_{name}", palette if name in CLASS_COLUMNS else None)
        written += [f"umap_{name}.png", f"umap_{name}.svg"]
    if inputs.dataset is not None and p.n_thumbnails > 0:
        chosen, cells, grid = spread_out(coords, p.n_thumbnails, p.seed)
        thumbnails(coords, images_for(inputs, chosen), cells, grid, out / "umap_thumbnails.png",
                   f"UMAP of {len(coords)} latents with example images")
        written.append("umap_thumbnails.png")
    return {"n_samples": int(len(coords)), "files": written}


def report(summary: dict, p: UmapParameters) -> list:
    return [f"mapped {summary['n_samples']} samples: {', '.join(summary['files'])} in {p.out}"]


def _joins(run: Path) -> dict:
    """The tables of earlier steps that can colour the map, and their columns."""
    tables = [(output_of(run, step) / table, column) for step, table, column in
              (("label-propagate", "predictions.csv", "predicted_label"), ("cluster", "clusters.csv", "cluster"))]
    present = [(t, c) for t, c in tables if t.exists()]
    return {"join": [t for t, _ in present], "colour_by": [c for _, c in present]}


def section(run: Path) -> Section:
    section = Section("UMAP map of the latent space")
    for name in ("umap_label.png", "umap_predicted_label.png", "umap_cluster.png"):
        path = run / STEP.output / name
        if path.exists():
            colour = name[len("umap_"):-len(".png")].replace("_", " ")
            section.figures.append((path, f"Each dot is an image, placed so that images with similar latent codes "
                                    f"sit together; colour: {colour}. Separate islands of one colour mean the "
                                    "model tells those classes apart; distances between islands mean little.",
                                    "720px"))
            break
    section.figures.append((run / STEP.output / "umap_thumbnails.png", "The images themselves at their places on the "
                            "map.", "720px"))
    return section


STEP = Step(
    name="umap", section=section, parameters=UmapParameters, run=run, report=report, output="umap",
    supplies=lambda run, data: {**from_embeddings(run, data), **_joins(run)}, needs=("embed",),
    help="A 2-D UMAP of the latents: umap.csv, umap_<column>.png/.svg and umap_thumbnails.png.")
