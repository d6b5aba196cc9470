"""`vaetools run` / `vaetools chain`: run steps in order inside one run folder, skipping steps whose
inputs and options have not changed since they last succeeded."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import click
import yaml

from vae_tools import __version__
from vae_tools.atomic import write_json
from vae_tools.errors import ConfigError, VaeToolsError
from vaetools_pipelines.run_lock import run_folder_lock
from vaetools_pipelines.steps import get_step, is_step, list_steps, reserved_options

STATE_FILE = "pipeline_state.json"
INDEX_FILE = "index.html"
TOP_LEVEL_KEYS = ("data", "name", "out", "steps")


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, except that a key written twice in one mapping is an error, not the last value."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"the key {key!r} is written twice",
                                                        key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


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
        if key == "steps":
            raise ConfigError(f"--set {text!r}: the steps are the pipeline file's; change a step's option with "
                              "STEP.OPTION=VALUE, e.g. train.epochs=5")
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
        raw = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
        node = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(f"{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    _check_top_level(raw, str(path))
    lines = _step_lines(node)
    raw = apply_overrides(raw, list(overrides), str(path))
    _check_top_level(raw, str(path))
    for key in ("name", "out"):
        if raw.get(key) is not None and not isinstance(raw[key], str):
            raise ConfigError(f"{path}: '{key}' must be text, got {type(raw[key]).__name__} {raw[key]!r}")
    steps = []
    for i, entry in enumerate(raw["steps"]):
        line = lines[i] if i < len(lines) else None
        where = f"{path}:{line}" if line else str(path)
        if isinstance(entry, str):
            entry = {entry: {}}
        if not isinstance(entry, dict) or len(entry) != 1:
            raise ConfigError(f"{where}: each step is a name, or a name with its options (e.g. 'cluster: {{method: gmm}}')")
        (name, options), = entry.items()
        if not is_step(name):
            raise ConfigError(f"{where}: unknown step {name!r}; use {', '.join(list_steps())}")
        if options is not None and not isinstance(options, dict):
            raise ConfigError(f"{where}: the options of {name} must be a mapping")
        steps.append(StepSpec(name, check_option_names(name, options, where), line=line))
    name = str(raw.get("name") or path.stem)
    if not out and not raw.get("out"):
        check_run_name(name, str(path))
    target = Path(out or raw.get("out") or Path("runs") / name)
    return Pipeline(str(raw["data"]), target, steps, str(path))


def _check_top_level(raw, where: str) -> None:
    if not isinstance(raw, dict) or not isinstance(raw.get("steps"), list) or not raw["steps"]:
        raise ConfigError(f"{where}: expected a mapping with 'data' and a non-empty list 'steps'")
    unknown_keys = set(raw) - set(TOP_LEVEL_KEYS)
    if unknown_keys:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown_keys)))}; "
                          f"use {', '.join(TOP_LEVEL_KEYS)}")
    if not raw.get("data") or not isinstance(raw["data"], str):
        raise ConfigError(f"{where}: 'data' must name one source (such as digits, mnist or a path)")


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
        if is_step(arg):
            steps.append(StepSpec(arg))
        elif not steps:
            raise ConfigError(f"{arg!r}: expected a step name first ({', '.join(list_steps())})")
        else:
            steps[-1].args.append(arg)
    if not steps:
        raise ConfigError(f"name at least one step: {', '.join(list_steps())}")
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
                 quiet: bool = False, runner_sets: Optional[dict] = None) -> click.Context:
    """The step's command with its options parsed and typed: what the run folder supplies and a
    pipeline file's options go in as values (Click converts and checks each one as it would the
    same option typed), while the options typed after a step of `vaetools chain` are parsed as the
    command line they are."""
    try:
        typed = typed_after_step(command, step)
        declared = get_step(step.name)
        supplied = {"out": run / declared.output, **declared.supplies(run, data)}
        values = parameter_values(command, [supplied, step.options, typed, runner_sets or {}], step.name, where)
        if quiet and any(p.name == "quiet" for p in command.params):
            values["quiet"] = True
        return command.make_context(f"vaetools {step.name}", [], default_map=values)
    except click.exceptions.Exit:
        raise ConfigError(f"{where}: step {step.name}: --help is not an option of a pipeline step") from None
    except click.UsageError as exc:
        extra = re.match(r"Got unexpected extra arguments? \((.*)\)", exc.format_message())
        if extra:
            raise ConfigError(f"{where}: {extra.group(1)!r} is not a step or an option of {step.name} "
                              f"(steps: {', '.join(list_steps())})") from None
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
    reserved = reserved_options(step.name)
    for param in command.params:
        if param.name in values and option_spellings(param) & reserved:
            raise click.UsageError(f"Got unexpected extra argument ({param.opts[0]}: the run folder sets it for every "
                                   f"step; give --out and --data before the steps)")
    return values


def option_spellings(param: click.Parameter) -> set:
    """An option's names as a pipeline file may write them: --labelled -> labelled, --refine-rounds -> refine_rounds."""
    return {opt.lstrip("-").replace("-", "_") for opt in (*param.opts, *param.secondary_opts)}


def parameter_values(command: click.Command, layers: list, step: str, where: str) -> dict:
    """Options by name (any spelling, _ or -) -> values by the command's parameter names; later
    layers win, except that a repeatable option collects the values of every layer."""
    known = {param.name: param for param in command.params}
    for param in command.params:
        known.update(dict.fromkeys(option_spellings(param), param))
    values = {}
    for options in layers:
        for key, value in options.items():
            value = _as_typed(value)
            param = known.get(str(key).replace("-", "_"))
            if param is None:
                raise ConfigError(f"{where}: {key!r} is not an option of {step} (see `vaetools {step} --help`)")
            if param.multiple:
                items = value if isinstance(value, (list, tuple)) else [value]
                values[param.name] = [*values.get(param.name, ()), *(_typed(param, v, key, step, where) for v in items)]
            elif isinstance(value, list) and param.nargs == 1:
                raise ConfigError(f"{where}: {step} takes one value for {key!r}, got a list")
            else:
                values[param.name] = _typed(param, value, key, step, where)
    return values


def _typed(param: click.Parameter, value, key: str, step: str, where: str):
    """A value from YAML as strict as the same value typed: Click itself would take 1.9 or true for a
    whole number (int() of them is 1), so those are refused here, as are mappings for any option."""
    def wrong(expected: str):
        return ConfigError(f"{where}: {step} option {key!r} takes {expected}, got {type(value).__name__} {value!r}")

    if isinstance(value, dict):
        raise wrong("one value")
    if getattr(param, "is_flag", False):
        if not isinstance(value, bool):
            raise wrong("true or false")
        return value
    if isinstance(param.type, click.types.IntParamType) and (isinstance(value, (bool, float))):
        raise wrong("a whole number")
    if isinstance(param.type, (click.types.FloatParamType, click.types.IntParamType)) or \
            getattr(param.type, "name", "") == "number":
        if isinstance(value, bool):
            raise wrong("a number")
    elif isinstance(value, bool):
        raise wrong("text or a number")
    return value


def check_pipeline(pipeline: Pipeline, commands: dict) -> None:
    """Everything a run needs, checked before anything is written, moved or removed: the run folder's
    place, every step's options and paths (a typo in the last step costs nothing), the data source,
    and that no output would replace a file or folder this pipeline did not write."""
    from vaetools_pipelines.safe_paths import UnsafeOutput, check_command_paths, check_outside_input_folder

    run = pipeline.out
    if run.exists() and not run.is_dir():
        raise VaeToolsError(f"{run}: exists and is not a folder")
    try:
        check_outside_input_folder(str(run), "--data", pipeline.data)
    except UnsafeOutput as exc:
        raise UnsafeOutput(f"{pipeline.source}: {exc.format_message()}") from None
    for step in pipeline.steps:
        where = f"{pipeline.source}:{step.line}" if step.line else pipeline.source
        # A resumable step writes its partial folder; the runner itself then replaces the output.
        layout, partial = get_step(step.name), None
        if layout.resumes is not None:
            folder = _partial(run, step.name)
            partial = {"out": folder, "resume": folder.is_dir() and layout.resumes(folder)}
        context = step_context(step, commands[step.name], run, pipeline.data, where, runner_sets=partial)
        try:
            check_command_paths(context.params, step.name, layout.inputs())
        except UnsafeOutput as exc:
            raise UnsafeOutput(f"{where}: step {step.name}: {exc.format_message()}") from None
    names = [s.name for s in pipeline.steps]
    for position, step in enumerate(pipeline.steps):
        needs = get_step(step.name).needs
        later = [n for n in needs if n in names[position + 1:]]
        if later:
            raise ConfigError(f"step {step.name} needs the output of {', '.join(later)}, which comes after it: "
                              f"move {step.name} below {', '.join(later)}")
        missing = [n for n in needs if n not in names and not (run / get_step(n).output).exists()]
        if missing:
            raise ConfigError(f"step {step.name} needs the output of {', '.join(missing)}: add it before {step.name}")
    _check_source(pipeline)
    _check_ownership(pipeline, read_state(run))


def _check_source(pipeline: Pipeline) -> None:
    from vae_tools.data import load_dataset
    from vae_tools.errors import DataError

    try:
        load_dataset(pipeline.data)
    except DataError as exc:
        raise ConfigError(f"{pipeline.source}: data: {exc}") from None


def _check_ownership(pipeline: Pipeline, state: dict) -> None:
    """A run folder's files are the runner's only where its state records writing them: a user's own
    folder named model/ (or labels/, index.html, ...) is never replaced."""
    run = pipeline.out
    recorded = set(state.get("steps", {}))
    places = [(run / INDEX_FILE, bool(recorded))]
    for step in pipeline.steps:
        layout = get_step(step.name)
        places.append((run / layout.output, step.name in recorded))
        if layout.resumes is not None:
            places.append((_partial(run, step.name), bool(state.get("steps", {}).get(step.name, {}).get("partial"))))
    for place, ours in places:
        if (place.exists() or place.is_symlink()) and not ours:
            raise ConfigError(f"{place}: exists and was not written by this pipeline (no record of it in {run / STATE_FILE}); "
                              "vaetools will not replace it: choose another --out, or move it away")


def _partial(run: Path, step: str) -> Path:
    return run / f".{get_step(step).output}.partial"


def run_pipeline(pipeline: Pipeline, commands: dict, force: bool = False, quiet: bool = False,
                 echo=click.echo, again: Optional[str] = None) -> dict:
    """Runs the steps; returns the state. A failing step raises VaeToolsError naming it, an interrupted
    one Interrupted; the outputs of earlier steps stay, and running again (``again``, the command line
    that does) continues with that step."""
    run = pipeline.out
    check_pipeline(pipeline, commands)
    run.mkdir(parents=True, exist_ok=True)
    with run_folder_lock(run):
        _check_ownership(pipeline, read_state(run))  # again, now that no other writer can change the folder
        return _run_steps(pipeline, commands, force, quiet, echo, again or "the same command again")


def _run_steps(pipeline: Pipeline, commands: dict, force: bool, quiet: bool, echo, again: str) -> dict:
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
        output = run / get_step(step.name).output
        if not force and previous.get("fingerprint") == key and previous.get("status") == "done" and output.exists():
            echo(f"[{step.name}] unchanged since its last run; skipped")
            previous["skipped"] = True
            continue
        _run_step(step, commands[step.name], pipeline, state, key, previous, quiet, echo, again)
    from vaetools_pipelines.index_page import write_index

    write_index(run, state, pipeline)
    return state


def _run_step(step: StepSpec, command: click.Command, pipeline: Pipeline, state: dict, key: str, previous: dict,
              quiet: bool, echo, again: str) -> None:
    """One step. A resumable step (train) runs in a partial folder beside its output and replaces the
    output only when it has finished, so a failure or Ctrl-C never costs the model that was there."""
    from vaetools_pipelines.commands import execute
    from vaetools_pipelines.interrupts import Interrupted
    from vaetools_pipelines.launch import interrupt_taken
    from vae_tools.written import adopt

    run, layout = pipeline.out, get_step(step.name)
    output = run / layout.output
    partial = _partial(run, step.name) if layout.resumes is not None else None
    extra = {}
    if partial is not None and partial.exists():
        if previous.get("partial") and previous.get("fingerprint") == key and layout.resumes(partial):
            echo(f"[{step.name}] continuing the interrupted run in {partial}")
            extra = {"resume": True}
        else:
            shutil.rmtree(partial)  # this pipeline's own, left by a run with other options
    writer = getattr(layout.run, "writer", None)
    if writer is not None and previous:
        # The state records this pipeline writing the folder, perhaps before vaetools kept a record in it.
        adopt(output, writer)
    echo(f"[{step.name}] running")
    started = time.perf_counter()
    record = state["steps"][step.name] = {"fingerprint": key, "status": "running", "options": step.options,
                                          "args": step.args, "partial": partial is not None}
    write_json(run / STATE_FILE, state)

    def stopped(status: str, message: str) -> bool:
        """Record how the step ended; keep a partial output only where it holds work to continue."""
        kept = partial is not None and partial.exists() and layout.resumes(partial)
        if partial is not None and partial.exists() and not kept:
            shutil.rmtree(partial)
        record.update(status=status, error=message, partial=kept, seconds=round(time.perf_counter() - started, 2))
        write_json(run / STATE_FILE, state)
        return kept

    try:
        target = {"out": partial, **extra} if partial is not None else {}
        with step_context(step, command, run, pipeline.data, pipeline.source, quiet, target) as ctx:
            execute(layout, layout.parameters(**ctx.params))
    except (Interrupted, KeyboardInterrupt):
        interrupt_taken()  # before the clean-up, which an interrupt raised again would cut short
        kept = stopped("interrupted", "interrupted")
        what = f"; its finished work is kept in {partial} and running again continues it" if kept else ""
        raise Interrupted(f"step {step.name} interrupted{what}; the outputs of earlier steps are kept in {run}; "
                          f"continue with: {again}") from None
    except (VaeToolsError, click.ClickException) as exc:
        message = exc.format_message() if isinstance(exc, click.ClickException) else str(exc)
        stopped("failed", message)
        raise VaeToolsError(f"step {step.name} failed: {message}; the outputs of earlier steps are kept in "
                            f"{run}, and running the pipeline again continues from {step.name}") from None
    if partial is not None:
        _replace(partial, output)
    record.update(status="done", partial=False, seconds=round(time.perf_counter() - started, 2),
                  finished=time.strftime("%Y-%m-%d %H:%M:%S"))
    write_json(run / STATE_FILE, state)


def _replace(new: Path, old: Path) -> None:
    """Put the finished folder ``new`` where ``old`` is: renames only, so no moment holds half of either."""
    if not old.exists():
        os.replace(new, old)
        return
    retired = old.with_name(f".{old.name}.replaced")
    if retired.exists():
        shutil.rmtree(retired)
    os.replace(old, retired)
    os.replace(new, old)
    shutil.rmtree(retired)


def versions() -> dict:
    import numpy
    import sklearn
    import torch

    return {"vaetools": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "numpy": numpy.__version__, "scikit-learn": sklearn.__version__}
