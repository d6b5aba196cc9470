"""``vaetools traverse``: what each latent dimension does, one decoded row per dimension."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from vaetools_pipelines.figures import save_grid, thumbnail_rows
from vaetools_pipelines.image_writers import save_images_npz
from vaetools_pipelines.output_set import writes_output_set
from vaetools_pipelines.run_inputs import model_and_latent_summary
from vae_tools.atomic import write_json
from vae_tools.errors import DataError
from vae_tools.generation import manifold_grid, traverse
from vae_tools.generation.summary import ACTIVE_KL
from vae_tools.tables import write_table

MAX_ROWS = 16  # a taller picture stops being readable; --dims shows any others


@writes_output_set
def run_traverse(model_dir: str | Path, out: str | Path, dims: Optional[Sequence[int]] = None, steps: int = 11,
                 span: float = 3.0, data: Optional[str] = None, split: str = "all", device: str = "auto",
                 seed: int = 0) -> dict:
    """Writes traverse.png (one row per dimension, the most informative first), traverse.npz,
    dimensions.csv (each dimension's KL and whether it is active) and, for a 2-d latent space,
    manifold.png."""
    model, run_dir, summary, _ = model_and_latent_summary(model_dir, data, split, device, seed,
                                                          needed_for=" to order the dimensions by")
    kl = summary.kl_per_dim
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
