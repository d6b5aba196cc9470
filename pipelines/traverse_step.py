"""``vaetools traverse``: what each latent dimension does, one decoded row per dimension."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import click

from vaetools_pipelines import common_options as common
from vaetools_pipelines.option_types import FiniteFloat, dims_list
from vaetools_pipelines.output_set import writes_output_set
from vaetools_pipelines.sections import one_figure
from vaetools_pipelines.step_api import Step, option
from vaetools_pipelines.steps import model_only

MAX_ROWS = 16  # a taller picture stops being readable; --dims shows any others


@dataclass(frozen=True)
class TraverseParameters:
    model_dir: str = common.model_run()
    out: str = common.out_folder()
    dims: tuple = option((), multiple=True, callback=dims_list, metavar="J",
                         show_default="the active ones (KL at least 0.01 nats), most informative first, at most 16",
                         help="Dimensions to show, in this order; repeatable or comma-separated.")
    steps: int = option(11, type=click.IntRange(min=2, max=64), help="Images per row.")
    span: float = option(3.0, flags=("--range",), type=FiniteFloat(0, 100, open_low=True),
                         help="Each dimension goes from -RANGE to +RANGE (prior standard deviations).")
    data: str = common.data("measure each dimension's KL on, instead of the training images", required=False)
    split: str = common.split()
    device: str = common.device()
    seed: int = common.seed("Random seed: the same seed gives the same pictures.")
    quiet: bool = common.quiet_without_progress()


@writes_output_set
def run(p: TraverseParameters) -> dict:
    """Writes traverse.png (one row per dimension, the most informative first), traverse.npz,
    dimensions.csv (each dimension's KL and whether it is active) and, for a 2-d latent space,
    manifold.png."""
    import numpy as np
    import pandas as pd

    from vae_tools.atomic import write_json
    from vae_tools.errors import DataError
    from vae_tools.generation import manifold_grid, traverse
    from vae_tools.generation.summary import ACTIVE_KL
    from vae_tools.tables import write_table
    from vaetools_pipelines.figures import save_grid, thumbnail_rows
    from vaetools_pipelines.image_writers import save_images_npz
    from vaetools_pipelines.run_inputs import model_and_latent_summary

    model, run_dir, summary, _ = model_and_latent_summary(p.model_dir, p.data, p.split, p.device, p.seed,
                                                          needed_for=" to order the dimensions by")
    kl = summary.kl_per_dim
    by_activity = [int(j) for j in np.argsort(-kl, kind="stable")]
    if p.dims:
        bad = [j for j in p.dims if not 0 <= j < model.latent_dim]
        if bad:
            raise DataError(f"--dims: dimension {bad[0]} does not exist; {run_dir} has dimensions 0 to "
                            f"{model.latent_dim - 1}")
        shown = list(p.dims)
    else:
        shown = [j for j in by_activity if kl[j] >= ACTIVE_KL][:MAX_ROWS] or by_activity[:1]
    walk = traverse(model, dims=shown, steps=p.steps, span=p.span)
    out = Path(p.out)
    rows = [(f"z{j} (KL {kl[j]:.2f})", walk.images[r], [f"{v:+.1f}" for v in walk.values])
            for r, j in enumerate(shown)]
    thumbnail_rows(rows, out / "traverse.png", title=f"each row: one latent dimension from {-p.span:g} to {p.span:g}, "
                   "the others at 0", max_columns=p.steps)
    save_images_npz(out / "traverse.npz", {"x": walk.images.reshape(-1, *walk.images.shape[2:])},
                    dim=np.repeat(shown, p.steps), value=np.tile(walk.values, len(shown)),
                    z=walk.latents.reshape(-1, model.latent_dim).numpy())
    table = pd.DataFrame({"dim": np.arange(model.latent_dim), "kl": kl, "active": kl >= ACTIVE_KL,
                          "rank": np.argsort(by_activity)})
    write_table(table.round(5), out / "dimensions.csv")
    files = ["traverse.png", "traverse.npz", "dimensions.csv"]
    if model.latent_dim == 2:
        grid, _ = manifold_grid(model, steps=max(p.steps, 15))
        save_grid(grid.reshape(-1, *grid.shape[2:]), out / "manifold.png", columns=grid.shape[1])
        files.append("manifold.png")
    summary = {"dims": shown, "n_active": int((kl >= ACTIVE_KL).sum()), "latent_dim": model.latent_dim,
               "steps": p.steps, "span": p.span, "files": files, "model": str(p.model_dir)}
    write_json(out / "summary.json", summary)
    return summary


def report(summary: dict, p: TraverseParameters) -> list:
    from pathlib import Path

    return [f"{summary['n_active']} of {summary['latent_dim']} dimensions are active; showed "
            f"{', '.join(map(str, summary['dims']))} in {Path(p.out) / 'traverse.png'}"]


SECTION = one_figure("traverse", "traverse.png", "What each latent dimension does", "A row per active " "dimension (most informative first): the code at 0 except that one dimension, which " "goes from -3 to +3.", "100%")


STEP = Step(name="traverse", section=SECTION, parameters=TraverseParameters, run=run, report=report, output="traverse",
            supplies=model_only, needs=("train",),
            help="""Decode one latent dimension at a time: traverse.png (a row per dimension, the others held
    at 0), traverse.npz, dimensions.csv (each dimension's KL; inactive ones carry nothing) and, for
    a 2-d latent space, manifold.png (the classic grid).""")
