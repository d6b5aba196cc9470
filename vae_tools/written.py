"""What vaetools wrote into a folder, and the one place its writes and deletes are checked.

Each output folder keeps a record (``.vaetools-written.json``): every file a command wrote there, by
the command's name. A command replaces a file only where the record says that same command wrote it,
and removes only files the record gives to it: never by a name pattern, never a file someone else
put there. Every path it writes or removes is resolved (links followed) when it is used and must lie
inside the folder it was given, so a link inside that folder cannot lead a write elsewhere."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable

from vae_tools.atomic import atomic_path
from vae_tools.errors import VaeToolsError

RECORD_FILE = ".vaetools-written.json"
RECORD_FORMAT = "vaetools-written"
MAX_RECORD_BYTES = 16 << 20


class OutputRefused(VaeToolsError):
    """A write or delete that would reach a file vaetools may not touch."""


def inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def real(path: str | os.PathLike) -> Path:
    """``path`` with every link in it followed (what exists of it; the rest as written)."""
    return Path(os.path.realpath(Path(path).expanduser()))


def target_in(folder: str | Path, name: str | Path) -> Path:
    """Where writing ``folder/name`` lands now, links followed; refused when that is outside ``folder``."""
    folder = Path(folder)
    path = folder / name
    lands = real(path.parent) / path.name
    if not inside(lands.parent, real(folder)):
        link = _first_link(folder, Path(name).parent)
        raise OutputRefused(f"{link}: a link to {real(link)}, outside {folder}; vaetools writes only inside the "
                            "output it was given: remove the link or choose another output")
    return lands


def _first_link(folder: Path, relative: Path) -> Path:
    path = folder
    for part in relative.parts:
        path = path / part
        if path.is_symlink():
            return path
    return path


def read_record(folder: str | Path) -> dict[str, str]:
    """The record of ``folder``: file name (relative, with /) -> the command that wrote it. A
    missing or damaged record gives nothing: then no file there counts as vaetools's own."""
    path = Path(folder) / RECORD_FILE
    try:
        if not path.is_file() or path.stat().st_size > MAX_RECORD_BYTES:
            return {}
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    files = record.get("files") if isinstance(record, dict) and record.get("format") == RECORD_FORMAT else None
    if not isinstance(files, dict):
        return {}
    return {str(k): str(v) for k, v in files.items() if isinstance(k, str) and isinstance(v, str)}


def _write_record(folder: Path, files: dict[str, str]) -> None:
    target = target_in(folder, RECORD_FILE)
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps({"format": RECORD_FORMAT, "files": dict(sorted(files.items()))}, indent=1) + "\n")


def check_namesakes(folder: str | Path, names: Iterable[str], by: str) -> None:
    """Refuse, naming the first, a file of ``names`` in ``folder`` that exists and that the record
    does not give to ``by``: it is the user's (or another command's), and writing would replace it."""
    folder = Path(folder)
    if not folder.is_dir():
        return
    record = read_record(folder)
    for name in names:
        path = folder / name
        if (path.exists() or path.is_symlink()) and record.get(str(name)) != by:
            whose = (f"was written there by vaetools {record[str(name)]}" if str(name) in record
                     else f"is not one vaetools wrote (no record of it in {folder / RECORD_FILE})")
            raise OutputRefused(f"{path}: exists and {whose}; vaetools {by} replaces only its own files: "
                                "move it away or choose another output")


def record_ahead(folder: str | Path, names: Iterable[str], by: str) -> None:
    """Record ``names`` as ``by``'s before writing them, so that a write cut short (Ctrl-C, a full
    disk) still leaves files the next run may replace or remove."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files = read_record(folder)
    files.update({str(name): by for name in names})
    _write_record(folder, files)


def settle(folder: str | Path, written: Iterable[str], by: str) -> list[Path]:
    """After ``by`` wrote ``written`` into ``folder``: remove the files the record gives to ``by``
    that this run did not write (left by an earlier, larger or other run of it), and record exactly
    what it wrote. Returns the removed files. Files of others, and links, are never removed."""
    folder = Path(folder)
    written = {str(name) for name in written}
    files = read_record(folder)
    removed = []
    for name, who in sorted(files.items()):
        if who != by or name in written:
            continue
        path = folder / name
        try:
            lands = target_in(folder, name)
        except OutputRefused:
            continue  # a link now stands in its way: what lies behind it is not ours
        if path.is_file() and not path.is_symlink():
            lands.unlink()
            removed.append(path)
    kept = {name: who for name, who in files.items() if who != by}
    _write_record(folder, {**kept, **{name: by for name in written}})
    return removed


def adopt(folder: str | Path, by: str) -> None:
    """Record every file now in ``folder`` that the record does not name as ``by``'s: for a folder
    whose owner is known otherwise (a pipeline's state records writing it, before vaetools kept
    these records)."""
    folder = Path(folder)
    if not folder.is_dir() or folder.is_symlink():
        return
    files = read_record(folder)
    found = {path.relative_to(folder).as_posix() for path in folder.rglob("*")
             if path.is_file() and not path.is_symlink() and path.name != RECORD_FILE
             and not any(part.startswith(".vaetools-") for part in path.relative_to(folder).parts)}
    new = sorted(found - set(files))
    if new:
        _write_record(folder, {**files, **{name: by for name in new}})
