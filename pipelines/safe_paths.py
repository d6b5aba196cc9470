"""Refuse, before any work, an output that would overwrite or pollute what a command reads."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Optional

import click

# Parameters whose value is a path a command reads, with the option's spelling; --data may also be a
# built-in name such as "digits".
INPUT_OPTIONS = {"data": "--data", "model_dir": "--model", "embeddings": "--embeddings", "labels_file": "--labels",
                 "reference": "--reference", "join": "--join", "pipeline": "the pipeline file"}


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


def check_output(out: Optional[str], inputs: Iterable[tuple[str, str]]) -> None:
    """``inputs``: (option name, value) pairs. The output may not be an input, contain one, or lie
    inside an input folder of images (its files would become part of the data). Links are resolved."""
    if out is None:
        return
    if str(out).strip() == "":
        raise UnsafeOutput("--out is empty: name a file or folder to write")
    target = Path(out).expanduser().resolve()
    check_writable(target, out)
    for option, value in inputs:
        source = _existing(str(value))
        if source is None:
            continue
        flag = INPUT_OPTIONS.get(option, option)
        if _inside(source, target):
            raise UnsafeOutput(f"--out {out} would overwrite {flag} {value}, which this command reads; "
                               "choose another --out")
        if option == "data" and source.is_dir() and _inside(target, source):
            raise UnsafeOutput(f"--out {out} lies inside the image folder --data {value}: its files would "
                               "become part of the data; choose a folder outside it")


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


def check_command_paths(params: dict) -> None:
    values = []
    for option in INPUT_OPTIONS:
        value = params.get(option)
        for item in (value if isinstance(value, (list, tuple)) else [value]):
            if item:
                values.append((option, str(item)))
    check_output(params.get("out"), values)
