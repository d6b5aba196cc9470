"""Encode a dataset with a trained VAE: one row per sample with its id, label and latent statistics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

from vae_tools.data import ImageDataset
from vae_tools.errors import DataError
from vae_tools.models.losses import kl_to_standard_normal


@torch.no_grad()
def embed(
    model: nn.Module,
    dataset: ImageDataset,
    batch_size: int = 512,
    device: torch.device | str = "cpu",
    logvar: bool = False,
    elbo: bool = False,
    elbo_samples: int = 1,
    progress: bool = False,
) -> pd.DataFrame:
    """Columns: id, label (when known), mu_0..mu_{d-1}; with ``logvar`` logvar_*; with ``elbo`` the
    negative ELBO per sample (nats, averaged over ``elbo_samples`` draws of z) and its two terms."""
    if tuple(dataset.shape) != tuple(model.image_shape):
        raise DataError(f"{dataset.name}: images are {dataset.shape} but the model expects {tuple(model.image_shape)}")
    model = model.to(device).eval()
    mus, logvars, recons, kls = [], [], [], []
    for _, x in dataset.iter_batches(batch_size, progress=progress, desc="embedding"):
        x = x.to(device)
        mu, lv = model.encode(x)
        mus.append(mu.float().cpu())
        logvars.append(lv.float().cpu())
        if elbo:
            recon = torch.zeros(len(x), device=device)
            for _ in range(elbo_samples):
                recon += model.reconstruction_nll(model.decode(model.reparameterize(mu, lv)), x)
            recons.append((recon / elbo_samples).cpu())
            kls.append(kl_to_standard_normal(mu.float(), lv.float()).cpu())
    frame = pd.DataFrame({"id": dataset.ids.astype(str)})
    if dataset.has_labels:
        frame["label"] = dataset.labels
    mu_block = torch.cat(mus).numpy()
    columns = {f"mu_{j}": mu_block[:, j] for j in range(mu_block.shape[1])}
    if logvar:
        lv_block = torch.cat(logvars).numpy()
        columns.update({f"logvar_{j}": lv_block[:, j] for j in range(lv_block.shape[1])})
    if elbo:
        recon_all, kl_all = torch.cat(recons).numpy(), torch.cat(kls).numpy()
        columns.update({"neg_elbo": recon_all + kl_all, "recon_nll": recon_all, "kl": kl_all})
    return pd.concat([frame, pd.DataFrame(columns)], axis=1)


def latent_matrix(frame: pd.DataFrame) -> np.ndarray:
    """The mu_* columns of an embeddings table as a float32 matrix."""
    columns = sorted((c for c in frame.columns if c.startswith("mu_")), key=lambda c: int(c[3:]))
    return frame[columns].to_numpy(np.float32)
