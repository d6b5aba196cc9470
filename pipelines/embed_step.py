"""``vaetools embed``: run folder + data source -> one row of latents per sample."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipelines.run_inputs import load_model_and_data
from vae_tools.embedding import embed
from vae_tools.tables import check_table_path, write_table


def run_embed(
    model_dir: str | Path,
    data: str,
    out: str | Path,
    split: str = "all",
    logvar: bool = False,
    elbo: bool = False,
    elbo_samples: int = 1,
    batch_size: int = 512,
    device: str = "auto",
    progress: bool = True,
    write: bool = True,
    workers: int = 0,
) -> pd.DataFrame:
    """Encode ``data`` with the run folder's model into the table ``out``. Under torchrun every
    process encodes its block and only the one with ``write`` writes the table."""
    out = check_table_path(out)
    model, dataset, torch_device = load_model_and_data(model_dir, data, split, device)
    frame = embed(model, dataset, batch_size=batch_size, device=torch_device, logvar=logvar, elbo=elbo,
                  elbo_samples=elbo_samples, progress=progress, workers=workers)
    if write:
        write_table(frame, out)
    return frame
