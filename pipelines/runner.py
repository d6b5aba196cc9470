"""`vaetools run` / `vaetools chain`: run steps in order inside one run folder, skipping steps whose
inputs and options have not changed since they last succeeded."""

from __future__ import annotations

import hashlib
import json
import platform
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import click
import yaml

from vaetools_pipelines.run_lock import run_folder_lock
from vaetools_pipelines.steps import LAYOUT, reserved_options, step_names
from vae_tools import __version__
from vae_tools.atomic import write_json
from vae_tools.errors import ConfigError, VaeToolsError

STATE_FILE = "pipeline_state.json"


@dataclass
class StepSpec:
    name: str
    options: dict = field(default_factory=dict)  # typed, by option name: {"labelled": 0.02} (a pipeline file)
    args: list = field(default_factory=list)  # or as typed after `vaetools chain ... STEP`: ["--labelled", "0.02"]
    line: Optional[int] = None  # where it was written in the pipeline file


@dataclass
class Pipeline:
    data: str
    out: Path
    steps: list = field(default_factory=list)
    source: str = "command line"


def check_option_names(step: str, options: dict, where: str) -> dict:
    """A pipeline file's options for ``step``, keys written with _ or -, minus unset ones (false, null)."""
    checked = {}
    for key, value in (options or {}).items():
        name = str(key).replace("-", "_")
        if name in reserved_options(step):
            raise ConfigError(f"{where}: '{key}' is set by the run folder layout, not per step")
        if value is not False and value is not None:
            checked[name] = value
    return checked


def apply_overrides(raw: dict, overrides: list, where: str) -> dict:
    """--set data=mnist, --set name=big, --set train.epochs=5, --set label-propagate.labeled=0.02."""
    for text in overrides:
        key, sep, value = text.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {text!r}: use KEY=VALUE, e.g. train.epochs=5 or data=mnist")
        try:
            parsed = yaml.safe_load(value) if value.strip() else None
        except yaml.YAMLError:
            raise ConfigError(f"--set {text!r}: the value is not valid YAML") from None
        key = key.strip()
        if "." not in key:
            raw[key] = parsed
            continue
        step, _, option = key.partition(".")
        if isinstance(raw.get("steps"), list):  # a step written without options ("- train") takes them too
            raw["steps"] = [{e: {}} if isinstance(e, str) else e for e in raw["steps"]]
        entries = [e for e in raw.get("steps", []) if isinstance(e, dict) and step in e]
        if not entries:
            raise ConfigError(f"--set {text!r}: the pipeline has no step {step!r} ({where})")
        for entry in entries:
            entry[step] = {**(entry[step] or {}), option: parsed}
    return raw


def load_pipeline(path: str | Path, overrides: list = (), out: Optional[str] = None) -> Pipeline:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such pipeline file")
    text = path.read_text()
    try:
        raw = yaml.safe_load(text)
        node = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(f"{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("steps"), list) or not raw["steps"]:
        raise ConfigError(f"{path}: expected a mapping with 'data' and a non-empty list 'steps'")
    lines = _step_lines(node)
    raw = apply_overrides(raw, list(overrides), str(path))
    unknown_keys = set(raw) - {"data", "name", "out", "steps"}
    if unknown_keys:
        raise ConfigError(f"{path}: unknown key(s) {', '.join(sorted(unknown_keys))}; use data, name, out, steps")
    if not raw.get("data") or not isinstance(raw["data"], str):
        raise ConfigError(f"{path}: 'data' must name one source (such as digits, mnist or a path)")
    steps = []
    for i, entry in enumerate(raw["steps"]):
        line = lines[i] if i < len(lines) else None
        where = f"{path}:{line}" if line else str(path)
        if isinstance(entry, str):
            entry = {entry: {}}
        if not isinstance(entry, dict) or len(entry) != 1:
            raise ConfigError(f"{where}: each step is a name, or a name with its options (e.g. 'cluster: {{method: gmm}}')")
        (name, options), = entry.items()
        if name not in LAYOUT:
            raise ConfigError(f"{where}: unknown step {name!r}; use {', '.join(step_names())}")
        if options is not None and not isinstance(options, dict):
            raise ConfigError(f"{where}: the options of {name} must be a mapping")
        steps.append(StepSpec(name, check_option_names(name, options, where), line=line))
    name = str(raw.get("name") or path.stem)
    if not out and not raw.get("out"):
        check_run_name(name, str(path))
    target = Path(out or raw.get("out") or Path("runs") / name)
    return Pipeline(str(raw["data"]), target, steps, str(path))


def check_run_name(name: str, where: str) -> None:
    """A pipeline's name becomes runs/NAME: one plain folder name, never a path out of runs/."""
    if (not name or name in (".", "..") or "/" in name or "\\" in name or name.startswith("-")
            or any(ord(c) < 32 or ord(c) == 127 for c in name) or len(name.encode()) > 200):
        raise ConfigError(f"{where}: name {name!r} must be one folder name (no '/', '..', control characters; "
                          "at most 200 bytes); use --out for a run folder elsewhere")


def _step_lines(node) -> list:
    if not isinstance(node, yaml.MappingNode):
        return []
    for key, value in node.value:
        if key.value == "steps" and isinstance(value, yaml.SequenceNode):
            return [item.start_mark.line + 1 for item in value.value]
    return []


def split_chain(args: list) -> list:
    """['train', '--epochs', '5', 'embed', 'umap'] -> [StepSpec('train', ['--epochs', '5']), ...]."""
    steps = []
    for arg in args:
        if arg in LAYOUT:
            steps.append(StepSpec(arg))
        elif not steps:
            raise ConfigError(f"{arg!r}: expected a step name first ({', '.join(step_names())})")
        else:
            steps[-1].args.append(arg)
    if not steps:
        raise ConfigError(f"name at least one step: {', '.join(step_names())}")
    return steps


def fingerprint(step: StepSpec, data: str, upstream: str) -> str:
    payload = json.dumps({"step": step.name, "options": step.options, "args": step.args, "data": data,
                          "upstream": upstream, "version": __version__}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def read_state(run: Path) -> dict:
    try:
        return json.loads((run / STATE_FILE).read_text())
    except (OSError, ValueError):
        return {"steps": {}}


def step_context(step: StepSpec, command: click.Command, run: Path, data: str, where: str,
                 quiet: bool = False) -> click.Context:
    """The step's command with its options parsed and typed: what the run folder supplies and a
    pipeline file's options go in as values (Click converts and checks each one as it would the
    same option typed), while the options typed after a step of `vaetools chain` are parsed as the
    command line they are."""
    try:
        typed = typed_after_step(command, step)
        supplied = LAYOUT[step.name].supplies(run, data)
        values = parameter_values(command, [supplied, step.options, typed], step.name, where)
        if quiet and any(p.name == "quiet" for p in command.params):
            values["quiet"] = True
        return command.make_context(f"vaetools {step.name}", [], default_map=values)
    except click.exceptions.Exit:
        raise ConfigError(f"{where}: step {step.name}: --help is not an option of a pipeline step") from None
    except click.UsageError as exc:
        extra = re.match(r"Got unexpected extra arguments? \((.*)\)", exc.format_message())
        if extra:
            raise ConfigError(f"{where}: {extra.group(1)!r} is not a step or an option of {step.name} "
                              f"(steps: {', '.join(step_names())})") from None
        raise ConfigError(f"{where}: step {step.name}: {exc.format_message()}") from None


def _as_typed(value):
    """Run-folder paths as the text a user would give, so a step sees the same values either way."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list):
        return [_as_typed(v) for v in value]
    return value


def typed_after_step(command: click.Command, step: StepSpec) -> dict:
    """The options typed after a step of `vaetools chain`, by parameter name, still as text."""
    if not step.args:
        return {}
    values, extra, _ = command.make_parser(click.Context(command)).parse_args(list(step.args))
    if extra:
        raise click.UsageError(f"Got unexpected extra argument ({' '.join(extra)})")
    return values


def parameter_values(command: click.Command, layers: list, step: str, where: str) -> dict:
    """Options by name (any spelling, _ or -) -> values by the command's parameter names; later
    layers win, except that a repeatable option collects the values of every layer."""
    known = {param.name: param for param in command.params}
    for param in command.params:
        for opt in (*param.opts, *param.secondary_opts):
            known[opt.lstrip("-").replace("-", "_")] = param
    values = {}
    for options in layers:
        for key, value in options.items():
            value = _as_typed(value)
            param = known.get(str(key).replace("-", "_"))
            if param is None:
                raise ConfigError(f"{where}: {key!r} is not an option of {step} (see `vaetools {step} --help`)")
            if param.multiple:
                values[param.name] = [*values.get(param.name, ()), *(value if isinstance(value, (list, tuple)) else [value])]
            elif isinstance(value, list) and param.nargs == 1:
                raise ConfigError(f"{where}: {step} takes one value for {key!r}, got a list")
            else:
                values[param.name] = value
    return values


def check_pipeline(pipeline: Pipeline, commands: dict) -> None:
    """Parse every step's options before anything runs, so a typo in the last step costs nothing."""
    for step in pipeline.steps:
        where = f"{pipeline.source}:{step.line}" if step.line else pipeline.source
        step_context(step, commands[step.name], pipeline.out, pipeline.data, where)


def run_pipeline(pipeline: Pipeline, commands: dict, force: bool = False, quiet: bool = False,
                 echo=click.echo) -> dict:
    """Runs the steps; returns the state. A failing step raises VaeToolsError naming it; the outputs of
    earlier steps stay, and running again continues with the failed step."""
    run = pipeline.out
    if run.exists() and not run.is_dir():
        raise VaeToolsError(f"{run}: exists and is not a folder")
    check_pipeline(pipeline, commands)
    names = [s.name for s in pipeline.steps]
    for position, step in enumerate(pipeline.steps):
        later = [n for n in LAYOUT[step.name].needs if n in names[position + 1:]]
        if later:
            raise ConfigError(f"step {step.name} needs the output of {', '.join(later)}, which comes after it: "
                              f"move {step.name} below {', '.join(later)}")
        missing = [n for n in LAYOUT[step.name].needs if n not in names and not (run / LAYOUT[n].output).exists()]
        if missing:
            raise ConfigError(f"step {step.name} needs the output of {', '.join(missing)}: add it before {step.name}")
    run.mkdir(parents=True, exist_ok=True)
    with run_folder_lock(run):
        return _run_steps(pipeline, commands, force, quiet, echo)


def _run_steps(pipeline: Pipeline, commands: dict, force: bool, quiet: bool, echo) -> dict:
    run = pipeline.out
    names = [s.name for s in pipeline.steps]
    state = read_state(run)
    state.update({"data": pipeline.data, "pipeline": pipeline.source, "versions": versions(),
                  "order": names})
    upstream = ""
    for step in pipeline.steps:
        # A step depends on everything before it in the chain (the umap step colours by earlier outputs).
        key = fingerprint(step, pipeline.data, upstream)
        upstream = key
        previous = state["steps"].get(step.name, {})
        output = run / LAYOUT[step.name].output
        if not force and previous.get("fingerprint") == key and previous.get("status") == "done" and output.exists():
            echo(f"[{step.name}] unchanged since its last run; skipped")
            previous["skipped"] = True
            continue
        echo(f"[{step.name}] running")
        if step.name == "train" and output.exists():
            shutil.rmtree(output)  # the options changed (or --force): train afresh
        command = commands[step.name]
        started = time.perf_counter()
        state["steps"][step.name] = {"fingerprint": key, "status": "running", "options": step.options,
                                     "args": step.args}
        write_json(run / STATE_FILE, state)
        try:
            with step_context(step, command, run, pipeline.data, pipeline.source, quiet) as ctx:
                command.invoke(ctx)
        except (VaeToolsError, click.ClickException) as exc:
            message = exc.format_message() if isinstance(exc, click.ClickException) else str(exc)
            state["steps"][step.name].update(status="failed", error=message,
                                             seconds=round(time.perf_counter() - started, 2))
            write_json(run / STATE_FILE, state)
            raise VaeToolsError(f"step {step.name} failed: {message}; the outputs of earlier steps are kept in "
                                f"{run}, and running the pipeline again continues from {step.name}") from None
        state["steps"][step.name].update(status="done", seconds=round(time.perf_counter() - started, 2),
                                         finished=time.strftime("%Y-%m-%d %H:%M:%S"))
        write_json(run / STATE_FILE, state)
    from vaetools_pipelines.index_page import write_index

    write_index(run, state, pipeline)
    return state


def versions() -> dict:
    import numpy
    import sklearn
    import torch

    return {"vaetools": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "numpy": numpy.__version__, "scikit-learn": sklearn.__version__}
