"""Write files so that a reader never sees half of one: write beside the target, then rename."""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import re
import tempfile
from pathlib import Path
from typing import Iterator

from safetensors import SafetensorError


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; on success it replaces ``target``, on error it is removed."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part" + target.suffix, dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        try:
            yield tmp_path
        except OSError as exc:
            if exc.filename is None:  # a failed write names no file: name the one being written
                raise OSError(exc.errno, exc.strerror, str(target)) from None
            raise
        except SafetensorError as exc:  # safetensors reports the system's refusal as its own error
            code = re.search(r"code: (\d+)", str(exc))
            number = int(code.group(1)) if code else errno.EIO
            raise OSError(number, os.strerror(number), str(target)) from None
        # mkstemp creates the file private (0600); give the result the permissions of an ordinary new file.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def finite_json(obj):
    """``obj`` with every NaN or infinite float replaced by None: JSON has no such numbers, and a file
    holding them (as Python writes by default) is rejected by most other readers."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_json(v) for v in obj]
    if hasattr(obj, "item") and getattr(obj, "ndim", None) == 0:  # numpy scalars
        return finite_json(obj.item())
    return obj


def write_json(target: str | os.PathLike, obj) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps(finite_json(obj), indent=2, sort_keys=False, allow_nan=False) + "\n")
