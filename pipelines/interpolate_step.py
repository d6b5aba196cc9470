"""``vaetools interpolate``: decoded paths between pairs of images in latent space."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from vaetools_pipelines.figures import thumbnail_rows
from vaetools_pipelines.image_writers import save_images_npz
from vaetools_pipelines.output_set import writes_output_set
from vaetools_pipelines.run_inputs import load_model_and_data, positions_of_ids
from vae_tools.atomic import write_json
from vae_tools.errors import DataError
from vae_tools.generation import interpolate
from vae_tools.tables import write_table

METHODS = ("slerp", "linear")


def random_pairs(dataset, count: int, seed: int) -> np.ndarray:
    """``count`` pairs of distinct images, of different labels where the data has labels."""
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


@writes_output_set(replaces=("pair_*.png",))
def run_interpolate(model_dir: str | Path, data: str, out: str | Path, between: Sequence[tuple[str, str]] = (),
                    pairs: int = 4, steps: int = 10, split: str = "all", device: str = "auto", seed: int = 0) -> dict:
    """Writes pair_NN.png per pair (a spherical and a straight path, the two images at the ends),
    interpolations.png (every pair's spherical path), interpolations.npz and pairs.csv."""
    model, dataset, _ = load_model_and_data(model_dir, data, split, device)
    if between:
        chosen = positions_of_ids(dataset, [i for pair in between for i in pair], data).reshape(-1, 2)
    else:
        chosen = random_pairs(dataset, pairs, seed)
    out = Path(out)
    ids = dataset.ids.astype(str)
    paths = {method: [] for method in METHODS}
    overview, table = [], []
    for k, (a, b) in enumerate(chosen):
        ends = dataset.batch(np.array([a, b])).numpy()
        rows = []
        for method in METHODS:
            path = interpolate(model, ends[0], ends[1], steps=steps, method=method)
            paths[method].append(path.images)
            strip = np.concatenate([ends[:1], path.images, ends[1:]])
            captions = [ids[a]] + [f"t={t:.2f}" for t in path.t] + [ids[b]]
            rows.append((method, strip, captions))
        name = f"pair_{k:02d}.png"
        thumbnail_rows(rows, out / name, title=f"{ids[a]} → {ids[b]}: input, decoded path, input",
                       max_columns=steps + 2)
        overview.append((f"{ids[a]} → {ids[b]}", rows[0][1], [""] * (steps + 2)))
        entry = {"pair": k, "id_a": ids[a], "id_b": ids[b], "file": name}
        if dataset.has_labels:
            entry.update(label_a=dataset.labels[a], label_b=dataset.labels[b])
        table.append(entry)
    thumbnail_rows(overview, out / "interpolations.png", title="spherical interpolation (slerp) between pairs",
                   max_columns=steps + 2)
    save_images_npz(out / "interpolations.npz", {m: np.concatenate(paths[m]) for m in METHODS},
                    pair=np.repeat(np.arange(len(chosen)), steps), t=np.tile(np.linspace(0, 1, steps), len(chosen)),
                    id_a=ids[chosen[:, 0]], id_b=ids[chosen[:, 1]])
    write_table(pd.DataFrame(table), out / "pairs.csv")
    summary = {"n_pairs": len(chosen), "steps": steps, "methods": list(METHODS), "model": str(model_dir), "data": data}
    write_json(out / "summary.json", summary)
    return summary
