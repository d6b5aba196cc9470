"""Click commands made from step declarations (pipelines/step_api.py), and running a step's function."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import re
from pathlib import Path

import click

from vaetools_pipelines.step_api import Step, flags_of, option_spec


class StepCommand(click.Command):
    """Checks, before any work, that the step may run here and that --out cannot overwrite what it reads."""

    def __init__(self, step: Step, **kwargs):
        super().__init__(step.name, **kwargs)
        self.step = step

    def invoke(self, ctx):
        from vaetools_pipelines.safe_paths import check_command_paths

        if not self.step.distributed:
            refuse_under_torchrun(ctx.info_name)
        check_command_paths(ctx.params, self.step.name, self.step.inputs())
        if ctx.params.get("out") is None or os.environ.get("RANK", "0") != "0":
            return super().invoke(ctx)
        from vaetools_pipelines.run_lock import output_lock

        with output_lock(Path(ctx.params["out"])):
            return super().invoke(ctx)


# The library names a parameter in `backticks`; the command line shows it as the flag that sets it.
PARAMETER = re.compile(r"`(\w+)`")
ALIASES = {"out_dir": "--out"}  # library parameters that a step's parameter of another name sets


def as_flags(message: str) -> str:
    """A library message with each `parameter` it names spelled as its command-line flag."""
    flags = parameter_flags()
    return PARAMETER.sub(lambda m: flags.get(m.group(1), m.group(0)), message)


@functools.lru_cache(maxsize=None)
def parameter_flags() -> dict:
    from vaetools_pipelines.steps import list_commands

    flags = dict(ALIASES)
    for step in list_commands().values():
        for field in dataclasses.fields(step.parameters):
            flags.setdefault(field.name, flags_of(field)[0])
    return flags


def refuse_under_torchrun(command: str) -> None:
    from vaetools_pipelines.steps import get_step, list_steps

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        parallel = [name for name in list_steps() if get_step(name).distributed]
        raise click.ClickException(f"{command} runs in one process; of the commands, only "
                                   f"{', '.join(parallel[:-1])} and {parallel[-1]} run under torchrun")


class LiveHelpOption(click.Option):
    """An option whose help is written when asked for (it lists what a registry holds then)."""

    def __init__(self, *args, live_help, **kwargs):
        super().__init__(*args, **kwargs)
        self.live_help = live_help

    def get_help_record(self, ctx):
        self.help = self.live_help()
        return super().get_help_record(ctx)


def click_option(field: dataclasses.Field) -> click.Option:
    spec = option_spec(field)
    default = None if field.default is dataclasses.MISSING else field.default
    live = callable(spec.help)
    help_text = "" if live else spec.help
    shown = bool(spec.show_default) and not (default is None or default is False or default == ())
    if isinstance(spec.show_default, str):  # a default decided later (by the data, a preset): said in words
        help_text, shown = f"{help_text}  [default: {spec.show_default}]", False
    kind, extra = (LiveHelpOption, {"live_help": spec.help}) if live else (click.Option, {})
    return kind([*flags_of(field), field.name], type=spec.type, default=default, help=help_text,
                metavar=spec.metavar, multiple=spec.multiple, is_flag=spec.is_flag or None, nargs=spec.nargs,
                callback=spec.callback, required=spec.required, show_default=shown, **extra)


@functools.lru_cache(maxsize=None)
def command_for(step: Step) -> StepCommand:
    def callback(**values):
        return execute(step, step.parameters(**values))

    params = [click_option(f) for f in dataclasses.fields(step.parameters)]
    return StepCommand(step, params=params, callback=callback, help=step.help)


def execute(step: Step, parameters) -> None:
    """Run the step's function; print its report (under torchrun, the first process only)."""
    if step.distributed:
        with process_group(parameters.device) as writes_outputs:
            summary = step.run(parameters)
        if not writes_outputs:
            return
    else:
        summary = step.run(parameters)
    for line in step.report(summary, parameters) if step.report else ():
        click.echo(line)


@contextlib.contextmanager
def process_group(device):
    """Under torchrun: join its process group for the command, and leave it after. Returns whether
    this process writes the outputs (only the first one does)."""
    from vae_tools import distributed

    distributed.start_from_environment(device or "auto")
    finished = False
    try:
        yield distributed.is_main_process()
        finished = True
    except Exception as exc:
        if distributed.world_size() > 1 and collective_failed(exc):
            # The process that failed printed the reason; this one only lost its partner.
            raise click.ClickException(f"process {distributed.rank()} of the torchrun job stops: another process "
                                       "stopped first (its error is above)") from None
        raise
    finally:
        distributed.stop(wait=finished)


def collective_failed(exc: Exception) -> bool:
    """Whether ``exc`` is a collective operation failing because another process has gone."""
    import torch.distributed as dist

    kinds = tuple(k for k in (getattr(dist, "DistError", None),) if k is not None)
    text = str(exc).lower()
    return isinstance(exc, kinds) or (isinstance(exc, RuntimeError) and any(
        word in text for word in ("gloo", "nccl", "connection closed", "connection reset", "broken pipe")))
