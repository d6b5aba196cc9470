"""The steps a pipeline can chain, and where each one reads and writes inside a run folder.

A built-in step is the `vaetools` sub-command of the same name; a step from elsewhere brings its own
command through ``register_step``. The runner fills in the run-folder paths (model, data,
embeddings, out) as typed option values, so a pipeline names only the options that differ."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional


@dataclass(frozen=True)
class StepLayout:
    output: str  # file or folder inside the run folder
    # (run_folder, data) -> the options the runner supplies, by option name: {"data": data, "out": run / "x"}
    supplies: Callable[[Path, str], dict]
    needs: tuple = ()  # steps whose outputs this one reads
    command: Optional[object] = None  # its click.Command; None: the vaetools sub-command of the same name
    section: Optional[Callable] = None  # run folder -> its index-page Section (pipelines/index_page.py)
    # For a step that can continue where it stopped: (partial output) -> whether it holds work to
    # continue. The runner then writes it beside its place and moves it in only when it finishes.
    resumes: Optional[Callable[[Path], bool]] = None


def _joins(run: Path) -> dict:
    tables = [(run / table, column) for table, column in
              (("labels/predictions.csv", "predicted_label"), ("clusters/clusters.csv", "cluster")) if (run / table).exists()]
    return {"join": [t for t, _ in tables], "colour_by": [c for _, c in tables]}


def _from_model(output: str):
    """The options of a step that reads the trained model and the data and writes ``output``."""
    return lambda run, data: {"model": run / "model", "data": data, "out": run / output}


def _holds_epochs(folder: Path) -> bool:
    from vae_tools.run_folder import STATE_FILE

    return (folder / STATE_FILE).is_file()


LAYOUT = {
    "train": StepLayout("model", lambda run, data: {"data": data, "out": run / "model"}, resumes=_holds_epochs),
    "embed": StepLayout("embeddings.parquet", lambda run, data: {**_from_model("embeddings.parquet")(run, data),
                                                                 "elbo": True}, ("train",)),
    "label-propagate": StepLayout("labels", _from_model("labels"), ("train",)),
    "cluster": StepLayout("clusters", lambda run, data: {
        "embeddings": run / "embeddings.parquet", "data": data, "out": run / "clusters"}, ("embed",)),
    "umap": StepLayout("umap", lambda run, data: {
        "embeddings": run / "embeddings.parquet", "data": data, "out": run / "umap", **_joins(run)}, ("embed",)),
    "anomalies": StepLayout("anomalies", _from_model("anomalies"), ("train",)),
    "denoise": StepLayout("denoise", _from_model("denoise"), ("train",)),
    "sample": StepLayout("samples", lambda run, data: {"model": run / "model", "out": run / "samples"}, ("train",)),
    "reconstruct": StepLayout("reconstructions", _from_model("reconstructions"), ("train",)),
    "interpolate": StepLayout("interpolations", _from_model("interpolations"), ("train",)),
    "traverse": StepLayout("traverse", lambda run, data: {"model": run / "model", "out": run / "traverse"}, ("train",)),
}


def step_names() -> tuple:
    """Every step a pipeline may name, built-in ones first, in the order they usually run."""
    return tuple(LAYOUT)


def register_step(name: str, layout: StepLayout) -> None:
    """Add a step from outside vaetools: its click command, where it writes in the run folder, what
    the runner supplies, and (optionally) its index-page section. The command must take the options
    ``layout.supplies`` names, and ``--quiet``."""
    if name in LAYOUT:
        raise ValueError(f"step {name!r} is already registered")
    if layout.command is None:
        raise ValueError(f"step {name!r}: give its click command (StepLayout.command)")
    LAYOUT[name] = layout


def reserved_options(step: str) -> set:
    """Options the runner supplies for ``step``; a pipeline may not set them (train's --model, the
    older spelling of --architecture, picks the network, so it stays the user's)."""
    return {"data", "out", "embeddings"} | (set() if step == "train" else {"model"})
