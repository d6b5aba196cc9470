"""``vaetools reconstruct``: images beside their reconstructions, with each one's error."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from vaetools_pipelines.figures import save_grid
from vaetools_pipelines.image_writers import save_images_npz
from vaetools_pipelines.output_set import writes_output_set
from vaetools_pipelines.run_inputs import load_model_and_data, positions_of_ids
from vae_tools.atomic import write_json
from vae_tools.generation import reconstruct
from vae_tools.image_quality import psnr_ssim
from vae_tools.tables import write_table

PAIRS_PER_ROW = 8


def pick_images(dataset, data: str, ids: Optional[Sequence[str]], n: int, seed: int) -> np.ndarray:
    """Positions of the chosen ``ids``, else of ``n`` random images in the data's order."""
    if ids:
        return positions_of_ids(dataset, ids, data)
    count = min(n, len(dataset))
    return np.sort(np.random.default_rng(seed).choice(len(dataset), size=count, replace=False))


def side_by_side(inputs: np.ndarray, outputs: np.ndarray) -> np.ndarray:
    """Rows of PAIRS_PER_ROW images, each row followed by the row of their reconstructions."""
    rows = []
    for start in range(0, len(inputs), PAIRS_PER_ROW):
        chunk = slice(start, start + PAIRS_PER_ROW)
        blank = np.ones((PAIRS_PER_ROW - len(inputs[chunk]), *inputs.shape[1:]), np.float32)
        rows += [inputs[chunk], blank, outputs[chunk], blank]
    return np.concatenate(rows)


@writes_output_set
def run_reconstruct(model_dir: str | Path, data: str, out: str | Path, n: int = 32,
                    ids: Optional[Sequence[str]] = None, split: str = "all", device: str = "auto",
                    seed: int = 0) -> dict:
    """Writes reconstructions.png (rows of inputs, each above its reconstructions),
    reconstructions.npz (ids, x, reconstructed) and reconstructions.csv (id, MSE, PSNR, SSIM)."""
    model, dataset, _ = load_model_and_data(model_dir, data, split, device)
    positions = pick_images(dataset, data, ids, n, seed)
    inputs = dataset.batch(positions).numpy()
    outputs = reconstruct(model, inputs)
    out = Path(out)
    save_grid(side_by_side(inputs, outputs), out / "reconstructions.png", columns=PAIRS_PER_ROW)
    chosen_ids = dataset.ids[positions].astype(str)
    save_images_npz(out / "reconstructions.npz", {"x": inputs, "reconstructed": outputs}, ids=chosen_ids)
    psnr, ssim = psnr_ssim(inputs, outputs)
    table = pd.DataFrame({"id": chosen_ids, "mse": ((inputs - outputs) ** 2).reshape(len(inputs), -1).mean(1),
                          "psnr_db": psnr, "ssim": ssim})
    if dataset.has_labels:
        table.insert(1, "label", np.asarray(dataset.labels)[positions])
    write_table(table.round(5), out / "reconstructions.csv")
    summary = {"n_images": len(positions), "mean_psnr_db": float(np.mean(psnr)), "mean_ssim": float(np.mean(ssim)),
               "model": str(model_dir), "data": data}
    write_json(out / "summary.json", summary)
    return summary
