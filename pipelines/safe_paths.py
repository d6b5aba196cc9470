"""Refuse, before any work, an output that would overwrite or pollute what a command reads."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Optional

import click


class UnsafeOutput(click.ClickException):
    exit_code = 2


def _existing(value: str) -> Optional[Path]:
    for candidate in (value, value.rsplit(":", 1)[0]):  # "file.npz:test" names a split of file.npz
        path = Path(candidate).expanduser()
        if candidate and path.exists():
            return path.resolve()
    return None


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def check_output(out: Optional[str], inputs: Iterable[tuple[str, str, str]]) -> None:
    """``inputs``: (parameter name, its spelling, value) triples; --data may also be a built-in name
    such as "digits". The output may not be an input, contain one, lie inside an input folder (its
    files would become part of the data; a run folder has its own rule), nor hold a link that leads
    into one. Links are resolved."""
    if out is None:
        return
    if str(out).strip() == "":
        raise UnsafeOutput("--out is empty: name a file or folder to write")
    target = Path(out).expanduser().resolve()
    check_writable(target, out)
    sources = []
    for option, flag, value in inputs:
        source = _existing(str(value))
        if source is None:
            continue
        if _inside(source, target):
            raise UnsafeOutput(f"--out {out} would overwrite {flag} {value}, which this command reads; "
                               "choose another --out")
        if option != "model_dir":  # a run folder may hold outputs beside its own files (check_not_in_a_run_folder)
            check_outside_input_folder(out, flag, value)
        sources.append((flag, value, source))
    check_links_inside(out, sources)


def check_outside_input_folder(out: str, flag: str, value: str) -> None:
    """An output inside a folder the command reads (images, a partitioned table) would become part
    of it."""
    source = _existing(str(value))
    if source is None or not source.is_dir():
        return
    if _inside(Path(out).expanduser().resolve(), source):
        what = "the image folder " if flag == "--data" else ""
        raise UnsafeOutput(f"--out {out} lies inside {what}{flag} {value}: its files would become part of what "
                           "this command reads; choose a folder outside it")


LINKS_LOOKED_AT = 100_000  # entries of an existing --out walked for links before giving up on the look


def check_links_inside(out: str, sources: list) -> None:
    """A link inside an existing --out that leads into (or around) something the command reads: a
    write through it would land there. Refused before any work; a link elsewhere is refused when
    a write would pass through it (vae_tools.written.target_in)."""
    root = Path(out).expanduser()
    if not sources or not root.is_dir() or root.is_symlink():
        return
    seen = 0
    for folder, subfolders, files in os.walk(root):
        for name in subfolders + files:
            seen += 1
            path = Path(folder) / name
            if not path.is_symlink():
                continue
            lands = path.resolve()
            for flag, value, source in sources:
                if _inside(lands, source) or _inside(source, lands):
                    raise UnsafeOutput(f"--out {out}: {path} is a link to {lands}, which holds {flag} {value}: "
                                       "a write through it would change what this command reads; remove the "
                                       "link or choose another --out")
        if seen > LINKS_LOOKED_AT:
            return


def check_not_in_a_run_folder(out: str, command: Optional[str], resume: bool = False) -> None:
    """A trained run folder's own files (its manifest: vae_tools.run_folder.RUN_FILES) are written by
    `vaetools train` alone: another command's output may sit beside them, never on them."""
    from vae_tools.run_folder import RUN_FILES, is_run_folder

    target = Path(out).expanduser().resolve()
    if is_run_folder(target):
        if command == "train" and resume:
            return
        raise UnsafeOutput(f"--out {out} is a trained run folder; choose a new folder (or a file beside its own)")
    for folder in target.parents:
        if is_run_folder(folder):
            first = target.relative_to(folder).parts[0]
            if first in RUN_FILES:
                raise UnsafeOutput(f"--out {out} would overwrite {first} of the run folder {folder}; choose another name")
            return


def check_writable(target: Path, out: str) -> None:
    """Before any compute: every name short enough, and the nearest existing folder writable."""
    for part in target.parts:
        if len(part.encode()) > 255:
            raise UnsafeOutput(f"--out {out}: the name {part[:40]}... is longer than 255 bytes, which file systems refuse")
    existing = target
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        if target != existing:
            raise UnsafeOutput(f"--out {out}: {existing} is a file, not a folder")
        existing = existing.parent
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UnsafeOutput(f"--out {out}: cannot write in {existing} (permission denied)")


def check_command_paths(params: dict, command: Optional[str], inputs: dict) -> None:
    """Every check of a command's --out against what it reads (``inputs``: the parameters that are
    paths it reads, by name, with their spelling) and what a run folder holds."""
    values = []
    for option, flag in inputs.items():
        value = params.get(option)
        for item in (value if isinstance(value, (list, tuple)) else [value]):
            if item:
                values.append((option, flag, str(item)))
    check_output(params.get("out"), values)
    if params.get("out") is not None:
        check_not_in_a_run_folder(str(params["out"]), command, bool(params.get("resume")))
