"""A step declared once: its parameters, the function that does the work, where it writes in a run
folder, what it needs upstream and its index-page section. The `vaetools` sub-command, the runner,
the safety checks, the torchrun check and the index page all read this one declaration.

Parameters are a frozen dataclass; each field is made by :func:`option`, which keeps its command-line
spelling, help and checks in the field's metadata, and its default in the field (taken from the
library's constant, so it is written once). This module imports nothing heavy: ``--help`` reads it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional


@dataclass(frozen=True)
class OptionSpec:
    """How one parameter is spelled and checked on the command line."""

    help: Any = ""  # the text, or a function giving it when --help asks (for a list a registry holds)
    flags: tuple = ()  # spellings; empty: --the-field-name
    type: Any = None  # a click type (click.Choice, click.IntRange, ...); None: from the default
    metavar: Optional[str] = None
    multiple: bool = False
    is_flag: bool = False
    nargs: int = 1
    callback: Optional[Callable] = None  # click's (ctx, param, value) -> value
    required: bool = False
    show_default: Any = True  # True, False, or the text to show
    reads: bool = False  # a path the step reads: --out may never overwrite it


def option(default: Any = None, **spec) -> Any:
    """A parameter field: ``default`` and the :class:`OptionSpec` keywords (help, flags, type, ...)."""
    return dataclasses.field(default=default, metadata={"option": OptionSpec(**spec)})


def option_spec(field: dataclasses.Field) -> OptionSpec:
    return field.metadata.get("option") or OptionSpec()


def flags_of(field: dataclasses.Field) -> tuple:
    return option_spec(field).flags or ("--" + field.name.replace("_", "-"),)


@dataclass(frozen=True)
class Step:
    """One step: ``run(parameters)`` does the work and returns its summary (a dict); ``report(summary,
    parameters)`` gives the lines the command prints after it."""

    name: str
    parameters: type  # a frozen dataclass whose fields come from option()
    run: Callable[[Any], Any]
    output: str  # file or folder inside a run folder
    # (run_folder, data) -> the parameters the runner supplies besides ``out`` (always run / output),
    # by name: {"data": data}
    supplies: Callable[[Path, str], dict]
    needs: tuple = ()  # steps whose outputs this one reads
    report: Optional[Callable[[Any, Any], list]] = None
    section: Optional[Callable] = None  # run folder -> its index-page Section (pipelines/index_page.py)
    key_figures: Optional[Callable] = None  # run folder -> [(name, text)] for the index page's summary
    # For a step that can continue where it stopped: (partial output) -> whether it holds work to
    # continue. The runner then writes it beside its place and moves it in only when it finishes.
    resumes: Optional[Callable[[Path], bool]] = None
    distributed: bool = False  # may run under torchrun, one process per device
    help: str = ""  # the command's help; its first sentence is the short one

    def inputs(self) -> dict:
        """Parameters that are paths this step reads, with their first spelling (for error lines)."""
        return {f.name: flags_of(f)[0] for f in dataclasses.fields(self.parameters) if option_spec(f).reads}
