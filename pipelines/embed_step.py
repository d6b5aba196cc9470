"""``vaetools embed``: run folder + data source -> one row of latents per sample."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from vaetools_pipelines.run_inputs import load_model_and_data
from vae_tools.embedding import embed
from vae_tools.errors import VaeToolsError
from vae_tools.tables import DONE_MARKER, check_table_path, finish_parts, write_part, write_table
from vae_tools.training import distributed


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
    partitioned: bool = False,
) -> int:
    """Encode ``data`` with the run folder's model into the table ``out``; returns its row count.
    Under torchrun every process encodes its block; only the one with ``write`` writes a single
    table, while with ``partitioned`` each writes its block as one part of the folder ``out``."""
    out = check_parts_path(out) if partitioned else check_table_path(out)
    model, dataset, torch_device = load_model_and_data(model_dir, data, split, device)
    frame = embed(model, dataset, batch_size=batch_size, device=torch_device, logvar=logvar, elbo=elbo,
                  elbo_samples=elbo_samples, progress=progress, workers=workers, gather=not partitioned)
    if not partitioned:
        if write:
            write_table(frame, out)
        return len(frame)
    write_parts(frame, out, len(dataset))
    return len(dataset)


def check_parts_path(out: str | Path) -> Path:
    out = Path(out)
    if out.suffix.lower() != ".parquet":
        raise VaeToolsError(f"{out}: a partitioned table is a Parquet folder; name it NAME.parquet")
    if out.exists() and not out.is_dir():
        raise VaeToolsError(f"{out}: exists and is a file; a partitioned table is a folder")
    return out


def write_parts(block: pd.DataFrame, out: Path, n_rows: int) -> None:
    """Each process writes its block as part-<rank>.parquet; the first then marks the table done.
    The marker goes first, so a reader never takes a half-rewritten folder for a finished one."""
    out.mkdir(parents=True, exist_ok=True)
    if distributed.is_main_process():
        (out / DONE_MARKER).unlink(missing_ok=True)
    distributed.barrier()
    write_part(block, out, distributed.rank())
    distributed.barrier()
    if distributed.is_main_process():
        finish_parts(out, distributed.world_size(), n_rows)
