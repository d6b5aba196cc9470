"""The ``vaetools`` command line: one sub-command per registered step (made from its declaration, see
pipelines/step_api.py), and the commands that run several steps into one run folder."""

from __future__ import annotations

import contextlib
import errno
import warnings
from pathlib import Path

import click

from vae_tools import __version__
from vae_tools.errors import VaeToolsError
from vaetools_pipelines import common_options as common
from vaetools_pipelines.commands import as_flags, command_for, refuse_under_torchrun
from vaetools_pipelines.interrupts import Interrupted, command_line
from vaetools_pipelines.steps import get_step, list_commands, list_steps


class VaeToolsGroup(click.Group):
    """Turns a user's mistake (VaeToolsError) into one line on stderr and exit status 1."""

    def parse_args(self, ctx, args):
        ctx.meta["vaetools.argv"] = list(args)  # for the line that repeats the command after a Ctrl-C
        return super().parse_args(ctx, args)

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except KeyboardInterrupt:  # while the command line is read: nothing has started
            raise Interrupted(f"interrupted before it started; nothing was written; run again: "
                              f"{command_line(*args)}") from None

    def invoke(self, ctx):
        try:
            with one_line_warnings():
                return super().invoke(ctx)
        except click.UsageError as exc:
            # One line, as for every other mistake: the usage block Click prints adds nothing the
            # line does not say, and --help is named in it.
            where = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
            raise OneLineUsageError(exc.format_message() + where) from None
        except VaeToolsError as exc:
            raise click.ClickException(as_flags(str(exc))) from None
        except KeyboardInterrupt:
            again = command_line(*ctx.meta.get("vaetools.argv", []))
            raise Interrupted(f"interrupted; no file was left half-written; continue with: {again}") from None
        except OSError as exc:  # a write or read the system refused: permission, disk full, name too long...
            raise click.ClickException(os_error_line(exc)) from None


@contextlib.contextmanager
def one_line_warnings():
    """Each warning as one `Warning:` line on stderr, once per message: a user of the command has no
    use for the library file and source line Python prints with it, nor for the same line per fold."""
    seen = set()

    def show(message, category, filename, lineno, file=None, line=None):
        if str(message) not in seen:
            seen.add(str(message))
            click.echo(f"Warning: {message}", err=True)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


class OneLineUsageError(click.ClickException):
    exit_code = 2  # Click's status for a usage error


OS_ERROR_HINTS = {errno.ENOSPC: "the disk is full", errno.EFBIG: "the file is too large for this system or quota",
                  errno.EACCES: "permission denied", errno.EPERM: "permission denied",
                  errno.ENAMETOOLONG: "the name is too long", errno.EISDIR: "it is a folder, not a file",
                  errno.ENOTDIR: "a part of the path is a file, not a folder", errno.EROFS: "the file system is read-only",
                  errno.EDQUOT: "the disk quota is exceeded"}


def os_error_line(exc: OSError) -> str:
    where = exc.filename or "a file"
    cause = OS_ERROR_HINTS.get(exc.errno, exc.strerror or str(exc))
    return f"{where}: {cause}; no file was left half-written"


class PipelineCommand(click.Command):
    """A command that runs steps into a run folder: refused under torchrun, and its --out checked
    against what it reads before any work (the runner locks the run folder itself)."""

    def invoke(self, ctx):
        from vaetools_pipelines.safe_paths import check_command_paths

        refuse_under_torchrun(ctx.info_name)
        check_command_paths(ctx.params, ctx.command.name, {"pipeline": "the pipeline file", "data": "--data"})
        return super().invoke(ctx)


@click.group(cls=VaeToolsGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vaetools")
def main():
    """Train convolutional and denoising VAEs on images and put their latent space to work.

    Start with `vaetools demo`, then `vaetools train --data SOURCE --out runs/NAME` and
    `vaetools embed --model runs/NAME --data SOURCE --out embeddings.parquet`.
    """


quiet_option = click.option("--quiet", is_flag=True, help="No progress bars.")
force_option = click.option("--force", is_flag=True, help="Rerun every step, even those that have not changed.")


def step_commands() -> dict:
    """Each pipeline step's command, by name."""
    return {name: command_for(get_step(name)) for name in list_steps()}


def pipeline_file(name_or_path: str) -> Path:
    """A YAML file, or a ready-made pipeline in configs/pipelines/ (demo, semi-supervised, ...)."""
    from vae_tools.config import presets_dir

    path = Path(name_or_path)
    if path.is_file():
        return path
    ready = presets_dir() / "pipelines" / f"{name_or_path}.yaml"
    if ready.is_file():
        return ready
    available = ", ".join(sorted(p.stem for p in (presets_dir() / "pipelines").glob("*.yaml")))
    raise VaeToolsError(f"{name_or_path}: no such pipeline file or ready-made pipeline ({available})")


@contextlib.contextmanager
def continued_by(again: str):
    """Ctrl-C outside a step (while the pipeline is read or checked) still says how to go on."""
    try:
        yield
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted before a step started; continue with: {again}") from None


def finish(state: dict, run: Path) -> None:
    total = sum(step.get("seconds", 0) for name, step in state["steps"].items()
                if name in state["order"] and not step.get("skipped"))
    click.echo(f"done in {total:.0f}s; open {run / 'index.html'}")


@main.command(cls=PipelineCommand)
@click.argument("pipeline", metavar="PIPELINE.yaml")
@click.option("--set", "set_options", multiple=True, metavar="KEY=VALUE",
              help="Override: data=mnist, name=big, or STEP.OPTION=VALUE such as train.epochs=5; repeatable.")
@click.option("--out", default=None, type=click.Path(file_okay=False),
              help="Run folder.  [default: runs/<the pipeline's name>]")
@force_option
@quiet_option
def run(pipeline, set_options, out, force, quiet):
    """Run the steps listed in PIPELINE.yaml into one run folder.

    PIPELINE.yaml names the data and the steps with their options, e.g.

    \b
        data: digits
        steps:
          - train: {epochs: 60}
          - embed
          - label-propagate: {labelled: 0.05}
          - umap

    Options are the sub-commands' own (see `vaetools STEP --help`); the run folder supplies
    --model, --data, --embeddings and --out. Ready-made pipelines: demo, semi-supervised,
    anomaly-audit, denoising. Steps whose inputs and options are unchanged since they last
    succeeded are skipped; after a failure, running again continues from the failed step.
    """
    from vaetools_pipelines.runner import load_pipeline, run_pipeline

    again = command_line("run", pipeline, *(w for s in set_options for w in ("--set", s)),
                         *(["--out", out] if out else []), *(["--quiet"] if quiet else []))
    with continued_by(again):
        spec = load_pipeline(pipeline_file(pipeline), set_options, out)
        state = run_pipeline(spec, step_commands(), force=force, quiet=quiet, again=again)
    finish(state, spec.out)


@main.command(cls=PipelineCommand, context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                                                     "allow_interspersed_args": False})  # chain's own options come before the steps
@click.option("--data", required=True, metavar="SOURCE", help=common.data().metadata["option"].help)
@click.option("--out", default="runs/chain", show_default=True, type=click.Path(file_okay=False), help="Run folder.")
@force_option
@quiet_option
@click.argument("steps", nargs=-1, type=click.UNPROCESSED)
def chain(data, out, force, quiet, steps):
    """Run steps in order without a pipeline file, each followed by its own options:

    \b
        vaetools chain --data digits train --epochs 30 embed \\
            label-propagate --labelled 0.02 umap anomalies

    The same run folder layout, skipping and resuming as `vaetools run`.
    """
    from vaetools_pipelines.runner import Pipeline, run_pipeline, split_chain

    again = command_line("chain", "--data", data, "--out", out, *(["--quiet"] if quiet else []), *steps)
    with continued_by(again):
        spec = Pipeline(data, Path(out), split_chain(list(steps)), "vaetools chain " + " ".join(steps))
        state = run_pipeline(spec, step_commands(), force=force, quiet=quiet, again=again)
    finish(state, spec.out)


@main.command(cls=PipelineCommand)
@click.option("--out", default="runs/demo", show_default=True, type=click.Path(file_okay=False), help="Run folder.")
@force_option
@quiet_option
def demo(out, force, quiet):
    """Every step on the built-in digits set (offline): train, embed, label-propagate, cluster,
    umap, anomalies (with 20 planted outliers as a check), denoise, sample, reconstruct,
    interpolate, traverse; ends by printing where the index page is."""
    from vaetools_pipelines.runner import load_pipeline, run_pipeline

    again = command_line("demo", "--out", out, *(["--quiet"] if quiet else []))
    with continued_by(again):
        spec = load_pipeline(pipeline_file("demo"), out=out)
        state = run_pipeline(spec, step_commands(), force=force, quiet=quiet, again=again)
    finish(state, spec.out)


def _add_step_commands() -> None:
    with one_line_warnings():  # a broken step from another distribution is one line; the rest keeps working
        steps = list_commands()
    for step in steps.values():
        main.add_command(command_for(step))


_add_step_commands()

if __name__ == "__main__":
    main()
