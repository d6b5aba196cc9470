"""``vaetools embed``: run folder + data source -> one row of latents per sample."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from vae_tools.models.defaults import INFERENCE_BATCH_SIZE
from vaetools_pipelines import common_options as common
from vaetools_pipelines.sections import Section
from vaetools_pipelines.step_api import Step, option
from vaetools_pipelines.steps import from_model

if TYPE_CHECKING:  # for the annotations only: the modules load when a step runs
    import pandas as pd


@dataclass(frozen=True)
class EmbedParameters:
    model_dir: str = common.model_run("A run folder written by `vaetools train`.")
    data: str = common.data()
    out: str = option(None, flags=("--out",), type=click.Path(), required=True,
                      help="Table to write: .parquet, .csv or .npz (chosen by extension).")
    split: str = common.split()
    logvar: bool = option(False, is_flag=True, help="Also write the posterior log-variances logvar_*.")
    elbo: bool = option(False, is_flag=True, help="Also write the per-sample negative ELBO and its terms (recon_nll, kl).")
    elbo_samples: int = option(1, type=click.IntRange(min=1), help="Monte Carlo samples of z for --elbo.")
    batch_size: int = common.batch_size(INFERENCE_BATCH_SIZE)
    partitioned: bool = option(
        False, is_flag=True,
        help="Write --out NAME.parquet as a folder of parts, one per process (part-00000.parquet, ...): under "
             "torchrun no process then holds the whole table. pandas.read_parquet reads the folder as one table.")
    device: str = common.device()
    workers: int = common.workers()
    quiet: bool = common.quiet()


def run(p: EmbedParameters) -> int:
    """Encode ``p.data`` with the run folder's model into the table ``p.out``; returns its row count.
    Under torchrun every process encodes its block; only the first writes a single table, while with
    ``partitioned`` each writes its block as one part of the folder ``p.out``."""
    from vae_tools.embedding import embed
    from vae_tools.tables import check_parts_folder, check_table_path, write_table
    from vae_tools.written import check_namesakes, record_ahead, target_in
    from vae_tools import distributed
    from vaetools_pipelines.run_inputs import load_model_and_data

    out = check_parts_path(p.out) if p.partitioned else check_table_path(p.out)
    if p.partitioned:
        check_parts_folder(out, distributed.world_size(), WRITER)
    else:
        check_namesakes(out.parent, [out.name], WRITER)
    model, dataset, torch_device = load_model_and_data(p.model_dir, p.data, p.split, p.device)
    frame = embed(model, dataset, batch_size=p.batch_size, device=torch_device, logvar=p.logvar, elbo=p.elbo,
                  elbo_samples=p.elbo_samples, progress=not p.quiet, workers=p.workers, gather=not p.partitioned)
    if not p.partitioned:
        if distributed.is_main_process():
            record_ahead(out.parent, [out.name], WRITER)
            write_table(frame, target_in(out.parent, out.name))
        return len(frame)
    write_parts(frame, out, len(dataset))
    return len(dataset)


def report(rows: int, p: EmbedParameters) -> list:
    return [f"wrote {rows} rows to {p.out}" + (" (one part per process)" if p.partitioned else "")]


def section(run: Path) -> Section:
    section = Section("Embeddings")
    path = run / STEP.output
    if path.exists():
        import pyarrow.parquet as pq

        schema = pq.read_schema(path)
        latent = sum(name.startswith("mu_") for name in schema.names)
        rows = pq.ParquetFile(path).metadata.num_rows
        section.sentences.append(
            f"{rows} images encoded: one row each, keyed by its id, with the {latent} means of its latent code "
            f"(mu_0 to mu_{latent - 1})" + (", its label" if "label" in schema.names else "")
            + (" and its negative ELBO (how badly the model explains it)" if "neg_elbo" in schema.names else "")
            + ". Every later step works from these codes; the table opens in pandas, Polars, DuckDB or Spark.")
    return section


STEP = Step(
    name="embed", section=section, parameters=EmbedParameters, run=run, report=report, output="embeddings.parquet",
    supplies=lambda run, data: {**from_model(run, data), "elbo": True}, needs=("train",), distributed=True,
    help="Encode SOURCE with a trained VAE: one row per sample with id, label and mu_0..mu_{d-1}.")


def check_parts_path(out: str | Path) -> Path:
    from vae_tools.errors import VaeToolsError

    out = Path(out)
    if out.suffix.lower() != ".parquet":
        raise VaeToolsError(f"{out}: a partitioned table is a Parquet folder; name it NAME.parquet")
    if out.exists() and not out.is_dir():
        raise VaeToolsError(f"{out}: exists and is a file; a partitioned table is a folder")
    return out


WRITER = "embed"  # the name this command's files have in a folder's record (vae_tools/written.py)


def write_parts(block: pd.DataFrame, out: Path, n_rows: int) -> None:
    """Each process writes its block as part-<rank>.parquet; the first then marks the table done."""
    from vae_tools.tables import finish_parts, start_parts, write_part
    from vae_tools import distributed

    if distributed.is_main_process():
        start_parts(out, distributed.world_size(), WRITER)
    distributed.barrier()
    write_part(block, out, distributed.rank())
    distributed.barrier()
    if distributed.is_main_process():
        finish_parts(out, distributed.world_size(), n_rows, WRITER)
