"""Per-sample tables written by extension (.parquet, .csv, .npz), atomically."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from vae_tools.atomic import atomic_path
from vae_tools.errors import VaeToolsError
from vae_tools.written import check_namesakes, record_ahead, settle, target_in

TABLE_SUFFIXES = (".parquet", ".csv", ".npz")


def check_table_path(path: str | Path) -> Path:
    path = Path(path)
    if path.suffix.lower() not in TABLE_SUFFIXES:
        raise VaeToolsError(f"{path}: output must end in {', '.join(TABLE_SUFFIXES)}")
    if path.exists() and path.is_dir():
        raise VaeToolsError(f"{path}: is a folder, expected a file name")
    return path


def write_table(frame: pd.DataFrame, path: str | Path) -> Path:
    path = check_table_path(path)
    suffix = path.suffix.lower()
    with atomic_path(path) as tmp:
        if suffix == ".parquet":
            frame.to_parquet(tmp, index=False)
        elif suffix == ".csv":
            frame.to_csv(tmp, index=False)
        else:
            # Fixed-width unicode, not object arrays: .npz readers must never need pickle.
            arrays = {"ids": frame["id"].to_numpy().astype(str)}
            if "label" in frame:
                labels = frame["label"].to_numpy()
                arrays["labels"] = labels.astype(str) if labels.dtype == object else labels
            for prefix in ("mu", "logvar"):
                columns = [c for c in frame.columns if c.startswith(prefix + "_")]
                if columns:
                    arrays[prefix] = frame[columns].to_numpy(np.float32)
            for column in ("neg_elbo", "recon_nll", "kl"):
                if column in frame:
                    arrays[column] = frame[column].to_numpy(np.float32)
            with open(tmp, "wb") as handle:
                np.savez(handle, **arrays)
    return path


PART_NAME = "part-{:05d}.parquet"
DONE_MARKER = "_SUCCESS"  # Spark's name; pyarrow and pandas skip files that start with "_"


def part_names(n_parts: int) -> list[str]:
    """Every name a table of ``n_parts`` parts writes into its folder."""
    return [PART_NAME.format(k) for k in range(n_parts)] + [DONE_MARKER]


def check_parts_folder(folder: str | Path, n_parts: int, by: str) -> None:
    """Refuse a folder holding files of the names a table of ``n_parts`` writes that ``by`` did not
    write (a Spark table's marker, a user's parts): writing would replace them."""
    check_namesakes(folder, part_names(n_parts), by)


def start_parts(folder: str | Path, n_parts: int, by: str) -> None:
    """Before the parts are written: record their names as ``by``'s (a write cut short still leaves
    files the next run may replace), and take the marker away so that a reader never takes a
    half-rewritten folder for a finished one."""
    folder = Path(folder)
    check_parts_folder(folder, n_parts, by)
    record_ahead(folder, part_names(n_parts), by)
    target_in(folder, DONE_MARKER).unlink(missing_ok=True)


def write_part(frame: pd.DataFrame, folder: str | Path, part: int) -> Path:
    """One part of a partitioned Parquet table (a folder NAME.parquet of part-NNNNN.parquet files).
    A part with no rows is not written (and an earlier one of that name goes): the columns of an
    empty part have no type, and pyarrow cannot read a folder whose first part says so."""
    target = target_in(folder, PART_NAME.format(part))
    if frame.empty:
        target.unlink(missing_ok=True)
        return target
    with atomic_path(target) as tmp:
        frame.to_parquet(tmp, index=False)
    return target


def finish_parts(folder: str | Path, n_parts: int, n_rows: int, by: str) -> None:
    """After every part is written: remove the parts of an earlier, wider run that its record gives
    to ``by`` (never a file by its name alone), then mark the table done."""
    folder = Path(folder)
    settle(folder, part_names(n_parts), by)
    with atomic_path(target_in(folder, DONE_MARKER)) as tmp:
        tmp.write_text(f'{{"parts": {n_parts}, "rows": {n_rows}}}\n')


def _read_parts(folder: Path) -> pd.DataFrame:
    if not (folder / DONE_MARKER).exists():
        raise VaeToolsError(f"{folder}: a partitioned table that was not finished (no {DONE_MARKER}); write it again")
    try:
        done = json.loads((folder / DONE_MARKER).read_text())
        n_parts, n_rows = int(done["parts"]), int(done["rows"])
    except (OSError, ValueError, KeyError, TypeError):
        raise VaeToolsError(f"{folder / DONE_MARKER}: not the marker vaetools writes; write the table again") from None
    # Only the parts the marker counts, in order (a part with no rows is not written): other files
    # in the folder are not part of the table.
    parts = [p for p in (folder / PART_NAME.format(k) for k in range(n_parts)) if p.is_file()]
    frame = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True) if parts else pd.DataFrame()
    if len(frame) != n_rows:
        raise VaeToolsError(f"{folder}: holds {len(frame)} rows where {DONE_MARKER} counts {n_rows} (a part is "
                            "missing or was changed); write the table again")
    return frame


def read_table(path: str | Path, text_columns: tuple = ("id",)) -> pd.DataFrame:
    """A CSV, Parquet or npz table, or a partitioned Parquet folder; in a CSV the ``text_columns``
    stay text (a label "1" is not read as 1.0)."""
    path = Path(path)
    if not path.exists():
        raise VaeToolsError(f"{path}: no such file")
    suffix = path.suffix.lower()
    try:
        if path.is_dir():
            return _read_parts(path)
        if suffix == ".parquet":
            return pd.read_parquet(path)
        if suffix == ".csv":
            frame = pd.read_csv(path, dtype={column: str for column in text_columns})
            present = [column for column in text_columns if column in frame.columns]
            if present:  # as written: "NA", "None" or "null" are names, only an empty cell is missing
                text = pd.read_csv(path, usecols=present, dtype=str, keep_default_na=False)
                for column in present:
                    frame[column] = text[column].where(text[column] != "", None)
            return frame
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                frame = pd.DataFrame({"id": data["ids"].astype(str)})
                if "labels" in data:
                    frame["label"] = data["labels"]
                for prefix in ("mu", "logvar"):
                    if prefix in data:
                        block = data[prefix]
                        for j in range(block.shape[1]):
                            frame[f"{prefix}_{j}"] = block[:, j]
                for column in ("neg_elbo", "recon_nll", "kl"):
                    if column in data:
                        frame[column] = data[column]
                return frame
    except (OSError, ValueError, KeyError) as exc:
        raise VaeToolsError(f"{path}: cannot read table ({exc})") from None
    raise VaeToolsError(f"{path}: unsupported table type (expected {', '.join(TABLE_SUFFIXES)})")
