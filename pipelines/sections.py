"""What a step shows on a run folder's index page: a Section of sentences and figures. Each step
declares its own builder (Step.section), and its key figures (Step.key_figures); this module is
light, so that declaring one costs nothing at start-up."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Section:
    title: str
    sentences: list = field(default_factory=list)  # what the step found, in words
    figures: list = field(default_factory=list)  # (path, caption, width)


def read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def csv_rows(path: Path):
    try:
        with open(path, newline="") as handle:
            rows = list(csv.DictReader(handle))
    except OSError:
        return []
    return rows


def metrics_of(run: Path, step: str) -> dict:
    """A step's metrics.json in the run folder ({} when it has none)."""
    from vaetools_pipelines.steps import output_of

    return read_json(output_of(run, step) / "metrics.json") or {}


def one_figure(step: str, name: str, title: str, caption: str, width: str):
    """The section of a step that shows one picture of its output folder."""
    def section(run: Path) -> Section:
        from vaetools_pipelines.steps import output_of

        return Section(title, figures=[(output_of(run, step) / name, caption, width)])
    return section
