"""The registry of steps: each one a :class:`~vaetools_pipelines.step_api.Step` declared in its own
module. Built-in steps and steps from other installed distributions are registered the same way:
by ``register_step``, the built-in ones from the modules below, the others from the entry-point group
``vaetools.steps`` (each entry point names a Step), so `vaetools run` in a shell finds them.

The runner fills in the run-folder paths (model, data, embeddings, out) as typed parameter values, so
a pipeline names only the options that differ."""

from __future__ import annotations

import importlib
from pathlib import Path

from vae_tools.errors import ConfigError
from vae_tools.plugins import register_plugins
from vaetools_pipelines.step_api import Step

ENTRY_POINT_GROUP = "vaetools.steps"
# In the order they usually run (the order of `vaetools --help` and of the errors' lists).
BUILT_IN = tuple(f"vaetools_pipelines.{module}_step:STEP" for module in (
    "train", "embed", "label_propagate", "cluster", "umap", "anomalies", "denoise", "sample", "reconstruct",
    "interpolate", "traverse"))
COMMANDS_ONLY = ("vaetools_pipelines.attribute_step:STEP",)  # a command, not a pipeline step

_STEPS: dict = {}
_COMMANDS: dict = {}
_loaded = False


def _object(reference: str):
    module, _, name = reference.partition(":")
    return getattr(importlib.import_module(module), name)


def _load() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for reference in BUILT_IN:
        register_step(_object(reference))
    for reference in COMMANDS_ONLY:
        step = _object(reference)
        _COMMANDS[step.name] = step
    register_plugins(ENTRY_POINT_GROUP, Step, lambda name: name in _STEPS or name in _COMMANDS, register_step, "step")


def register_step(step: Step) -> Step:
    """Add a step (built in, or from outside vaetools): `vaetools STEP`, pipelines and the index page
    then know it. Returns the step, so that ``STEP = register_step(Step(...))`` reads well."""
    _load()
    if step.name in _STEPS or step.name in _COMMANDS:
        raise ValueError(f"step {step.name!r} is already registered")
    names = {"out", "quiet"} - {f for f in step.parameters.__dataclass_fields__}
    if names:
        raise ValueError(f"step {step.name!r}: its parameters need {' and '.join(sorted(names))}")
    _STEPS[step.name] = step
    return step


def unregister_step(name: str) -> None:
    _STEPS.pop(name, None)


def get_step(name: str) -> Step:
    _load()
    if name not in _STEPS:
        raise ConfigError(f"unknown step {name!r}; use {', '.join(list_steps())}")
    return _STEPS[name]


def list_steps() -> tuple:
    """Every step a pipeline may name, built-in ones first, in the order they usually run."""
    _load()
    return tuple(_STEPS)


def is_step(name: str) -> bool:
    _load()
    return name in _STEPS


def list_commands() -> dict:
    """Every step's declaration by name, and the commands that are not pipeline steps."""
    _load()
    return {**_STEPS, **_COMMANDS}


def reserved_options(step: str) -> set:
    """Options the runner supplies for ``step``; a pipeline may not set them (train's --model, the
    older spelling of --architecture, picks the network, so it stays the user's)."""
    return {"data", "out", "embeddings"} | (set() if step == "train" else {"model"})


# What the runner supplies besides --out (the step's output in the run folder, always supplied):
def from_model(run: Path, data: str) -> dict:
    """For a step that reads the trained model and the data."""
    return {"model_dir": output_of(run, "train"), "data": data}


def model_only(run: Path, data: str) -> dict:
    """For a step that reads the model alone."""
    return {"model_dir": output_of(run, "train")}


def from_embeddings(run: Path, data: str) -> dict:
    """For a step that reads the embeddings table (and the images, for thumbnails)."""
    return {"embeddings": output_of(run, "embed"), "data": data}


def output_of(run: Path, name: str) -> Path:
    return run / get_step(name).output
