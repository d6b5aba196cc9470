"""``vaetools traverse``: what each latent dimension does, one decoded row per dimension."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from pipelines.figures import save_grid, thumbnail_rows
from pipelines.image_writers import save_images_npz
from pipelines.output_set import writes_output_set
from pipelines.run_inputs import load_model_and_data, load_model_only
from vae_tools.atomic import write_json
from vae_tools.errors import DataError, RunFolderError
from vae_tools.generation import load_latent_summary, manifold_grid, summarise_latents, traverse
from vae_tools.generation.summary import ACTIVE_KL
from vae_tools.tables import write_table

MAX_ROWS = 16  # a taller picture stops being readable; --dims shows any others


def dimension_activity(model, run_dir: Path, data: Optional[str], split: str, device: str, seed: int) -> np.ndarray:
    if data:
        model, dataset, _ = load_model_and_data(run_dir, data, split, device)
        return summarise_latents(model, dataset, seed=seed).kl_per_dim
    summary = load_latent_summary(run_dir, model.latent_dim)
    if summary is None:
        raise RunFolderError(f"{run_dir}: has no latent summary (trained by an earlier vaetools) to order the "
                             "dimensions by; give --data with the training images")
    return summary.kl_per_dim


@writes_output_set
def run_traverse(model_dir: str | Path, out: str | Path, dims: Optional[Sequence[int]] = None, steps: int = 11,
                 span: float = 3.0, data: Optional[str] = None, split: str = "all", device: str = "auto",
                 seed: int = 0) -> dict:
    """Writes traverse.png (one row per dimension, the most informative first), traverse.npz,
    dimensions.csv (each dimension's KL and whether it is active) and, for a 2-d latent space,
    manifold.png."""
    model, run_dir = load_model_only(model_dir, device)
    kl = dimension_activity(model, run_dir, data, split, device, seed)
    by_activity = [int(j) for j in np.argsort(-kl, kind="stable")]
    if dims:
        bad = [j for j in dims if not 0 <= j < model.latent_dim]
        if bad:
            raise DataError(f"--dims: dimension {bad[0]} does not exist; {run_dir} has dimensions 0 to "
                            f"{model.latent_dim - 1}")
        shown = list(dims)
    else:
        shown = [j for j in by_activity if kl[j] >= ACTIVE_KL][:MAX_ROWS] or by_activity[:1]
    walk = traverse(model, dims=shown, steps=steps, span=span)
    out = Path(out)
    rows = [(f"z{j} (KL {kl[j]:.2f})", walk.images[r], [f"{v:+.1f}" for v in walk.values])
            for r, j in enumerate(shown)]
    thumbnail_rows(rows, out / "traverse.png", title=f"each row: one latent dimension from {-span:g} to {span:g}, "
                   "the others at 0", max_columns=steps)
    save_images_npz(out / "traverse.npz", {"x": walk.images.reshape(-1, *walk.images.shape[2:])},
                    dim=np.repeat(shown, steps), value=np.tile(walk.values, len(shown)),
                    z=walk.latents.reshape(-1, model.latent_dim).numpy())
    table = pd.DataFrame({"dim": np.arange(model.latent_dim), "kl": kl, "active": kl >= ACTIVE_KL,
                          "rank": np.argsort(by_activity)})
    write_table(table.round(5), out / "dimensions.csv")
    files = ["traverse.png", "traverse.npz", "dimensions.csv"]
    if model.latent_dim == 2:
        grid, _ = manifold_grid(model, steps=max(steps, 15))
        save_grid(grid.reshape(-1, *grid.shape[2:]), out / "manifold.png", columns=grid.shape[1])
        files.append("manifold.png")
    summary = {"dims": shown, "n_active": int((kl >= ACTIVE_KL).sum()), "latent_dim": model.latent_dim,
               "steps": steps, "span": span, "files": files, "model": str(model_dir)}
    write_json(out / "summary.json", summary)
    return summary
