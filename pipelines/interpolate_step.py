"""``vaetools interpolate``: decoded paths between pairs of images in latent space."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from vaetools_pipelines import common_options as common
from vaetools_pipelines.output_set import writes_output_set
from vaetools_pipelines.sections import one_figure
from vaetools_pipelines.step_api import Step, option
from vaetools_pipelines.steps import from_model

if TYPE_CHECKING:  # for the annotations only: the modules load when a step runs
    import numpy as np

METHODS = ("slerp", "linear")


@dataclass(frozen=True)
class InterpolateParameters:
    model_dir: str = common.model_run()
    data: str = common.data()
    out: str = common.out_folder()
    between: tuple = option((), nargs=2, multiple=True, metavar="ID_A ID_B", show_default="--pairs random pairs",
                            help="Interpolate between these two images; repeatable.")
    pairs: int = option(4, type=click.IntRange(min=1, max=100),
                        help="Random pairs (of different labels where the data has labels) without --between.")
    steps: int = option(10, type=click.IntRange(min=2, max=64), help="Decoded points on each path, both ends included.")
    split: str = common.split()
    device: str = common.device()
    seed: int = common.seed("Random seed: the same seed gives the same pictures.")
    quiet: bool = common.quiet_without_progress()


def random_pairs(dataset, count: int, seed: int) -> np.ndarray:
    """``count`` pairs of distinct images, of different labels where the data has labels."""
    import numpy as np

    from vae_tools.errors import DataError

    if len(dataset) < 2:
        raise DataError(f"{dataset.name}: an interpolation needs two images; it holds {len(dataset)}")
    rng = np.random.default_rng(seed)
    labels = np.asarray(dataset.labels).astype(str) if dataset.has_labels else None
    pairs = []
    for _ in range(count):
        a = int(rng.integers(len(dataset)))
        others = np.flatnonzero(labels != labels[a]) if labels is not None else np.array([], dtype=int)
        if not len(others):
            others = np.delete(np.arange(len(dataset)), a)
        pairs.append((a, int(rng.choice(others))))
    return np.array(pairs, dtype=np.int64)


@writes_output_set
def run(p: InterpolateParameters) -> dict:
    """Writes pair_NN.png per pair (a spherical and a straight path, the two images at the ends),
    interpolations.png (every pair's spherical path), interpolations.npz and pairs.csv."""
    import numpy as np
    import pandas as pd

    from vae_tools.atomic import write_json
    from vae_tools.generation import interpolate
    from vae_tools.tables import write_table
    from vaetools_pipelines.figures import thumbnail_rows
    from vaetools_pipelines.image_writers import save_images_npz
    from vaetools_pipelines.run_inputs import load_model_and_data, positions_of_ids

    model, dataset, _ = load_model_and_data(p.model_dir, p.data, p.split, p.device)
    if p.between:
        chosen = positions_of_ids(dataset, [i for pair in p.between for i in pair], p.data).reshape(-1, 2)
    else:
        chosen = random_pairs(dataset, p.pairs, p.seed)
    out = Path(p.out)
    ids = dataset.ids.astype(str)
    paths = {method: [] for method in METHODS}
    overview, table = [], []
    for k, (a, b) in enumerate(chosen):
        ends = dataset.batch(np.array([a, b])).numpy()
        rows = []
        for method in METHODS:
            path = interpolate(model, ends[0], ends[1], steps=p.steps, method=method)
            paths[method].append(path.images)
            strip = np.concatenate([ends[:1], path.images, ends[1:]])
            captions = [ids[a]] + [f"t={t:.2f}" for t in path.t] + [ids[b]]
            rows.append((method, strip, captions))
        name = f"pair_{k:02d}.png"
        thumbnail_rows(rows, out / name, title=f"{ids[a]} → {ids[b]}: input, decoded path, input",
                       max_columns=p.steps + 2)
        overview.append((f"{ids[a]} → {ids[b]}", rows[0][1], [""] * (p.steps + 2)))
        entry = {"pair": k, "id_a": ids[a], "id_b": ids[b], "file": name}
        if dataset.has_labels:
            entry.update(label_a=dataset.labels[a], label_b=dataset.labels[b])
        table.append(entry)
    thumbnail_rows(overview, out / "interpolations.png", title="spherical interpolation (slerp) between pairs",
                   max_columns=p.steps + 2)
    save_images_npz(out / "interpolations.npz", {m: np.concatenate(paths[m]) for m in METHODS},
                    pair=np.repeat(np.arange(len(chosen)), p.steps), t=np.tile(np.linspace(0, 1, p.steps), len(chosen)),
                    id_a=ids[chosen[:, 0]], id_b=ids[chosen[:, 1]])
    write_table(pd.DataFrame(table), out / "pairs.csv")
    summary = {"n_pairs": len(chosen), "steps": p.steps, "methods": list(METHODS), "model": str(p.model_dir), "data": p.data}
    write_json(out / "summary.json", summary)
    return summary


def report(summary: dict, p: InterpolateParameters) -> list:
    return [f"interpolated {summary['n_pairs']} pairs in {p.steps} steps; outputs in {p.out}"]


SECTION = one_figure("interpolate", "interpolations.png", "Interpolation between pairs of images", "Each row starts and ends with a real image; between them, decoded codes on the " "spherical path joining their latent codes. Smooth changes mean a continuous latent " "space, which label propagation and clustering rely on.", "100%")


STEP = Step(
    name="interpolate", section=SECTION, parameters=InterpolateParameters, run=run, report=report, output="interpolations",
    supplies=from_model, needs=("train",),
    help="""Walk the latent space between two images, spherically (slerp) and in a straight line.

    Writes pair_NN.png for each pair, interpolations.png (all pairs), interpolations.npz and
    pairs.csv. Slerp keeps the path at the norm typical of codes; the straight line dips
    through the middle, where images often fade.
    """)
