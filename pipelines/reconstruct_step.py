"""``vaetools reconstruct``: images beside their reconstructions, with each one's error."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence

import click

from vaetools_pipelines import common_options as common
from vaetools_pipelines.option_types import id_list
from vaetools_pipelines.output_set import writes_output_set
from vaetools_pipelines.sections import one_figure
from vaetools_pipelines.step_api import Step, option
from vaetools_pipelines.steps import from_model

if TYPE_CHECKING:  # for the annotations only: the modules load when a step runs
    import numpy as np

PAIRS_PER_ROW = 8


@dataclass(frozen=True)
class ReconstructParameters:
    model_dir: str = common.model_run()
    data: str = common.data()
    out: str = common.out_folder()
    n: int = option(32, type=click.IntRange(min=1, max=10_000), help="Random images to reconstruct (without --images).")
    ids: tuple = option((), flags=("--images",), multiple=True, callback=id_list, metavar="ID",
                        help="Reconstruct these images (ids as in `vaetools embed`'s table); repeatable or comma-separated.")
    split: str = common.split()
    device: str = common.device()
    seed: int = common.seed("Random seed: the same seed gives the same pictures.")
    quiet: bool = common.quiet_without_progress()


def pick_images(dataset, data: str, ids: Optional[Sequence[str]], n: int, seed: int) -> np.ndarray:
    """Positions of the chosen ``ids``, else of ``n`` random images in the data's order."""
    import numpy as np

    from vaetools_pipelines.run_inputs import positions_of_ids

    if ids:
        return positions_of_ids(dataset, ids, data)
    count = min(n, len(dataset))
    return np.sort(np.random.default_rng(seed).choice(len(dataset), size=count, replace=False))


def side_by_side(inputs: np.ndarray, outputs: np.ndarray) -> np.ndarray:
    """Rows of PAIRS_PER_ROW images, each row followed by the row of their reconstructions."""
    import numpy as np

    rows = []
    for start in range(0, len(inputs), PAIRS_PER_ROW):
        chunk = slice(start, start + PAIRS_PER_ROW)
        blank = np.ones((PAIRS_PER_ROW - len(inputs[chunk]), *inputs.shape[1:]), np.float32)
        rows += [inputs[chunk], blank, outputs[chunk], blank]
    return np.concatenate(rows)


@writes_output_set
def run(p: ReconstructParameters) -> dict:
    """Writes reconstructions.png (rows of inputs, each above its reconstructions),
    reconstructions.npz (ids, x, reconstructed) and reconstructions.csv (id, MSE, PSNR, SSIM)."""
    import numpy as np
    import pandas as pd

    from vae_tools.atomic import write_json
    from vae_tools.generation import reconstruct
    from vae_tools.image_quality import psnr_ssim
    from vae_tools.tables import write_table
    from vaetools_pipelines.figures import save_grid
    from vaetools_pipelines.image_writers import save_images_npz
    from vaetools_pipelines.run_inputs import load_model_and_data

    model, dataset, _ = load_model_and_data(p.model_dir, p.data, p.split, p.device)
    positions = pick_images(dataset, p.data, p.ids, p.n, p.seed)
    inputs = dataset.batch(positions).numpy()
    outputs = reconstruct(model, inputs)
    out = Path(p.out)
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
               "model": str(p.model_dir), "data": p.data}
    write_json(out / "summary.json", summary)
    return summary


def report(summary: dict, p: ReconstructParameters) -> list:
    return [f"reconstructed {summary['n_images']} images (mean PSNR {summary['mean_psnr_db']:.2f} dB, "
            f"SSIM {summary['mean_ssim']:.3f}); outputs in {p.out}"]


SECTION = one_figure("reconstruct", "reconstructions.png", "Reconstructions", "Rows of images, each " "above its reconstruction from the latent code: what the code keeps of an image.", "640px")


STEP = Step(name="reconstruct", section=SECTION, parameters=ReconstructParameters, run=run, report=report, output="reconstructions",
            supplies=from_model, needs=("train",),
            help="Images beside their reconstructions (decoded from the posterior mean): reconstructions.png, "
                 "reconstructions.npz (x, reconstructed, ids) and reconstructions.csv (MSE, PSNR, SSIM per image).")
