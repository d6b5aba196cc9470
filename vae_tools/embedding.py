"""Encode a dataset with a trained VAE: one row per sample with its id, label and latent statistics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from vae_tools.data import ImageDataset
from vae_tools.errors import DataError
from vae_tools.models.base import BaseVAE
from vae_tools.models.inference import encode_rows
from vae_tools import distributed
from vae_tools.models.defaults import INFERENCE_BATCH_SIZE


@torch.inference_mode()
def embed(
    model: BaseVAE,
    dataset: ImageDataset,
    batch_size: int = INFERENCE_BATCH_SIZE,
    device: torch.device | str = "cpu",
    logvar: bool = False,
    elbo: bool = False,
    elbo_samples: int = 1,
    progress: bool = False,
    workers: int = 0,
    gather: bool = True,
) -> pd.DataFrame:
    """Columns: id, label (when known), mu_0..mu_{d-1}; with ``logvar`` logvar_*; with ``elbo`` the
    negative ELBO per sample (nats, averaged over ``elbo_samples`` draws of z) and its two terms.

    Inside a torch.distributed process group each process encodes one contiguous block of rows; with
    ``gather`` every process gets the whole table back, rows in the dataset's order, and without it
    each keeps its own block (for a partitioned output that no process holds whole). ``workers``:
    DataLoader processes decoding image files ahead of the model."""
    if tuple(dataset.shape) != tuple(model.image_shape):
        raise DataError(f"{dataset.name}: images are {dataset.shape} but the model expects {tuple(model.image_shape)}")
    device = distributed.local_device(torch.device(device))
    model = model.to(device).eval()
    start, stop = distributed.contiguous_share(len(dataset))
    block = encode_rows(model, dataset, np.arange(start, stop), batch_size, device, elbo, elbo_samples,
                         progress and distributed.is_main_process(), workers)
    if gather:
        start, stop, block = 0, len(dataset), distributed.gather_rows(block, len(dataset))
    labels = dataset.labels[start:stop] if dataset.has_labels else None
    return _table(dataset.ids[start:stop], labels, block.numpy(), model.latent_dim, logvar, elbo)


def _table(ids: np.ndarray, labels, block: np.ndarray, d: int, logvar: bool, elbo: bool) -> pd.DataFrame:
    frame = pd.DataFrame({"id": ids.astype(str)})
    if labels is not None:
        frame["label"] = labels
    columns = {f"mu_{j}": block[:, j] for j in range(d)}
    if logvar:
        columns.update({f"logvar_{j}": block[:, d + j] for j in range(d)})
    if elbo:
        recon_all, kl_all = block[:, 2 * d], block[:, 2 * d + 1]
        columns.update({"neg_elbo": recon_all + kl_all, "recon_nll": recon_all, "kl": kl_all})
    return pd.concat([frame, pd.DataFrame(columns)], axis=1)


def latent_matrix(frame: pd.DataFrame) -> np.ndarray:
    """The mu_* columns of an embeddings table as a float32 matrix."""
    columns = sorted((c for c in frame.columns if c.startswith("mu_")), key=lambda c: int(c[3:]))
    return frame[columns].to_numpy(np.float32)
