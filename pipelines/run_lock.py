"""One writer per run folder: a lock file naming its holder, with stale locks of dead processes
taken over."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from pathlib import Path

from vae_tools.errors import VaeToolsError

LOCK_FILE = ".vaetools.lock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, but belongs to someone else
        return True
    return True


def _holder(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def run_folder_lock(run: Path):
    """Hold ``run``'s lock for the duration; a second writer gets one clear error instead of silently
    overwriting the first one's outputs."""
    return _lock(Path(run) / LOCK_FILE, Path(run))


@contextlib.contextmanager
def output_lock(out: Path):
    """The lock of one command's output (a run folder, a folder of outputs or a table), held beside it
    so that taking it neither creates nor writes into the output before the command has checked its inputs."""
    out = Path(out).expanduser().absolute()
    made = [folder for folder in (out.parent, *out.parent.parents) if not folder.exists()]
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        with _lock(out.parent / f".{out.name}{LOCK_FILE}", out):
            yield
    finally:
        for folder in made:  # innermost first: what was made only to hold the lock goes if it stayed empty
            with contextlib.suppress(OSError):
                folder.rmdir()


@contextlib.contextmanager
def _lock(path: Path, run: Path):
    me = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S")}
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _holder(path)
            stale = holder.get("host") == me["host"] and isinstance(holder.get("pid"), int) and not _alive(holder["pid"])
            if stale or not holder:
                path.unlink(missing_ok=True)  # its process is gone (or it never finished writing): take over
                continue
            raise VaeToolsError(f"{run}: in use by process {holder.get('pid')} on {holder.get('host')} since "
                                f"{holder.get('since')}; wait for it to finish (or delete {path} if that process "
                                "is gone)") from None
        with os.fdopen(fd, "w") as handle:
            json.dump(me, handle)
        break
    else:
        raise VaeToolsError(f"{run}: could not take the lock {path}")
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)
