"""A step's outputs land together: written into a hidden folder (inside ``--out`` when it exists,
beside it when not), then moved in once all of them exist. A failure part-way (an error, Ctrl-C, a full disk) leaves ``--out`` as it was."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import shutil
import tempfile
from pathlib import Path

from vae_tools.errors import VaeToolsError


@contextlib.contextmanager
def staged_folder(out: str | Path, replaces: tuple = ()):
    """``replaces``: glob patterns of the files of a numbered set (sample_00012.png, pair_03.png): a
    file of ``out`` matching one that this run did not write is left from an earlier, larger run, and goes."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise VaeToolsError(f"{out}: exists and is not a folder")
    if out.is_dir():  # inside it: the folder may be writable where its parent is not
        home = out
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        home = out.parent
    stage = Path(tempfile.mkdtemp(prefix=".vaetools-", suffix=".part", dir=home))
    try:
        yield stage
        written = {p.relative_to(stage) for p in stage.rglob("*") if p.is_file()}
        _move_into(stage, out)
        for pattern in replaces:
            for stale in out.glob(pattern):
                if stale.is_file() and stale.relative_to(out) not in written:
                    stale.unlink()
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _move_into(stage: Path, out: Path) -> None:
    """Each file replaces its namesake in ``out`` by a rename (same file system: no copy, no half file);
    files of ``out`` that the step did not write are left alone."""
    out.mkdir(parents=True, exist_ok=True)
    for path in sorted(stage.rglob("*")):
        if path.is_file():
            target = out / path.relative_to(stage)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)


def writes_output_set(step=None, *, replaces: tuple = ()):
    """Decorate a step function ``run(parameters)`` whose ``parameters.out`` is a folder: it writes
    into a staged folder. In the processes of a torchrun job that only compute (all but the first)
    it runs without one. ``replaces``: see staged_folder."""
    if step is None:
        return functools.partial(writes_output_set, replaces=replaces)

    @functools.wraps(step)
    def staged(parameters):
        from vae_tools import distributed

        if not distributed.is_main_process():
            return step(parameters)
        with staged_folder(parameters.out, replaces) as stage:
            return step(dataclasses.replace(parameters, out=str(stage)))

    return staged
