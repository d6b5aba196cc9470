"""A step's outputs land together: written into a hidden folder (inside ``--out`` when it exists,
beside it when not), then moved in once all of them exist. A failure part-way (an error, Ctrl-C, a
full disk) leaves ``--out`` as it was. What moves in and what goes is decided by the folder's record
of what vaetools wrote there (vae_tools/written.py), never by a name pattern."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import shutil
import tempfile
from pathlib import Path

from vae_tools.errors import VaeToolsError
from vae_tools.written import check_namesakes, record_ahead, settle, target_in


@contextlib.contextmanager
def staged_folder(out: str | Path, by: str):
    """``by``: the command writing (its name in the folder's record). Its files of an earlier run
    that this one did not write (a larger sample, an option since dropped) go; nobody else's do."""
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
        written = sorted(p.relative_to(stage).as_posix() for p in stage.rglob("*") if p.is_file())
        # Every name is checked before the first moves: a refusal leaves --out as it was.
        targets = {name: target_in(out, name) for name in written}
        check_namesakes(out, written, by)
        record_ahead(out, written, by)
        for name, target in targets.items():
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(stage / name, target_in(out, name))  # resolved again: as it is at the moment of writing
        settle(out, written, by)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def writes_output_set(step):
    """Decorate a step function ``run(parameters)`` whose ``parameters.out`` is a folder: it writes
    into a staged folder. In the processes of a torchrun job that only compute (all but the first)
    it runs without one."""
    name = step.__module__.rsplit(".", 1)[-1].removesuffix("_step").replace("_", "-")

    @functools.wraps(step)
    def staged(parameters):
        from vae_tools import distributed

        if not distributed.is_main_process():
            return step(parameters)
        with staged_folder(parameters.out, name) as stage:
            return step(dataclasses.replace(parameters, out=str(stage)))

    staged.writer = name  # its name in a folder's record
    return staged
