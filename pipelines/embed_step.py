"""``vaetools embed``: run folder + data source -> one row of latents per sample."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from vae_tools.data import load_dataset
from vae_tools.device import resolve_device
from vae_tools.embedding import embed
from vae_tools.run_folder import load_run
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
) -> pd.DataFrame:
    out = check_table_path(out)
    torch_device = resolve_device(device)
    model, config = load_run(model_dir, torch_device)
    prep = config["preprocessing"]
    dataset = load_dataset(data, image_size=tuple(prep["image_size"]), channels=prep["channels"], split=split)
    frame = embed(model, dataset, batch_size=batch_size, device=torch_device, logvar=logvar, elbo=elbo,
                  elbo_samples=elbo_samples, progress=progress)
    write_table(frame, out)
    return frame
