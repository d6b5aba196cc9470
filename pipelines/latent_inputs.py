"""Where a latent-space step gets its latents: an embeddings table, or a run folder plus data."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
from torch import nn

from vaetools_pipelines.run_inputs import load_model_and_data
from vae_tools.data import ImageDataset, load_dataset
from vae_tools.device import resolve_device
from vae_tools.embedding import embed, latent_matrix
from vae_tools.errors import DataError, VaeToolsError
from vae_tools.run_folder import load_run
from vae_tools.tables import read_table


@dataclass
class LatentInputs:
    ids: np.ndarray
    labels: Optional[np.ndarray]  # the true labels, when the data has them
    latents: np.ndarray
    frame: pd.DataFrame  # the embeddings table (extra score columns included)
    dataset: Optional[ImageDataset] = None  # the images, for thumbnails and refinement
    model: Optional[nn.Module] = None
    device: object = "cpu"


def load_latent_inputs(embeddings: Optional[str] = None, model_dir: Optional[str] = None, data: Optional[str] = None,
                       split: str = "all", device: str = "auto", progress: bool = True,
                       need_model: bool = False) -> LatentInputs:
    """``embeddings`` alone, ``model_dir`` + ``data`` (embedded now), or ``embeddings`` + ``data``
    (images only for thumbnails). The rows of the table and the data must be the same samples."""
    torch_device = resolve_device(device or "auto")
    if embeddings is None and (model_dir is None or data is None):
        raise VaeToolsError("give --embeddings FILE, or --model RUN_FOLDER with --data SOURCE")
    model, dataset = None, None
    if model_dir is not None and data is not None:
        model, dataset, torch_device = load_model_and_data(model_dir, data, split, device)
    elif model_dir is not None:
        model, _ = load_run(model_dir, torch_device)
    elif data is not None:
        dataset = load_dataset(data, split=split)
    if need_model and (model is None or dataset is None):
        raise VaeToolsError("this needs --model RUN_FOLDER and --data SOURCE (the images are encoded again)")
    if embeddings is not None:
        frame = read_table(embeddings)
        if "id" not in frame.columns or not any(c.startswith("mu_") for c in frame.columns):
            raise DataError(f"{embeddings}: not an embeddings table (needs an id column and mu_* columns)")
        frame["id"] = frame["id"].astype(str)
        duplicated = frame["id"][frame["id"].duplicated()]
        if len(duplicated):
            raise DataError(f"{embeddings}: id {duplicated.iloc[0]!r} appears more than once; ids must be unique")
        text = [c for c in frame.columns if c.startswith("mu_") and not pd.api.types.is_numeric_dtype(frame[c])]
        if text:
            raise DataError(f"{embeddings}: column {text[0]!r} holds text; latent columns must be numbers")
        if dataset is not None and not np.array_equal(frame["id"].to_numpy(), dataset.ids.astype(str)):
            raise DataError(f"{embeddings}: its ids are not the samples of {data} in the same order")
    else:
        frame = embed(model, dataset, device=torch_device, progress=progress)
    latents = latent_matrix(frame)
    if not np.isfinite(latents).all():
        raise DataError(f"{embeddings or model_dir}: the latents contain NaN or infinite values")
    labels = frame["label"].to_numpy() if "label" in frame.columns and frame["label"].notna().all() else None
    return LatentInputs(frame["id"].to_numpy().astype(str), labels, latents, frame, dataset, model, torch_device)


def images_for(inputs: LatentInputs, positions) -> Optional[np.ndarray]:
    """NCHW images of the given rows, or None without --data."""
    if inputs.dataset is None:
        return None
    return inputs.dataset.batch(np.asarray(positions, dtype=np.int64)).numpy()


def ensure_out_dir(out: str | Path) -> Path:
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise VaeToolsError(f"{out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    return out
