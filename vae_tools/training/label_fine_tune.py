"""Semi-supervised fine-tuning: the ELBO plus a classification loss on (pseudo-)labelled samples.

A linear head on the latent mean is trained jointly with the VAE (in the spirit of Kingma et al.
2014's classifier on the latent space), so the encoder pulls same-class images together while the
ELBO keeps the latent space a generative one. Targets may come from the few true labels or from a
label propagation weighted by its confidence (self-training)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vae_tools.data import ImageDataset
from vae_tools.models.base import BaseVAE
from vae_tools.models.losses import kl_to_standard_normal
from vae_tools.training.schedule import learning_rate
from vae_tools.training.trainer import IN_MEMORY_LIMIT_BYTES
from vae_tools.training.seeding import keeps_global_rng
from vae_tools.progress import progress as progress_of


def random_shift(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each image by its own random offset of up to ``max_shift`` pixels per axis (edge
    pixels repeat into the gap)."""
    if max_shift <= 0:
        return x
    n, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4, mode="replicate")
    offsets = torch.randint(0, 2 * max_shift + 1, (n, 2), generator=generator).to(x.device)
    rows = torch.arange(h, device=x.device)[None, :] + offsets[:, :1]
    cols = torch.arange(w, device=x.device)[None, :] + offsets[:, 1:]
    picked = padded[torch.arange(n, device=x.device)[:, None, None], :, rows[:, :, None], cols[:, None, :]]
    return picked.permute(0, 3, 1, 2).contiguous()  # advanced indexing put channels last


@keeps_global_rng
def fine_tune_on_labels(
    model: BaseVAE,
    dataset: ImageDataset,
    targets: np.ndarray,
    weights: np.ndarray,
    n_classes: int,
    epochs: int = 2,
    label_weight: float = 100.0,
    lr: float = 1e-3,
    batch_size: int = 128,
    max_shift: int = 2,
    device: torch.device | str = "cpu",
    seed: int = 0,
    progress: bool = True,
) -> nn.Module:
    """Train ``model`` in place on ELBO + ``label_weight`` x weighted cross-entropy of a linear head
    on mu. ``targets`` holds a class index per sample (-1: no target); ``weights`` scales each one."""
    device = torch.device(device)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    dataset.load_into_memory(IN_MEMORY_LIMIT_BYTES, progress=progress)
    head = nn.Linear(model.latent_dim, n_classes).to(device)
    model.to(device).train()
    optimizer = torch.optim.AdamW(list(model.parameters()) + list(head.parameters()), lr=lr)
    target_t = torch.as_tensor(np.asarray(targets), dtype=torch.long)
    weight_t = torch.as_tensor(np.where(np.asarray(targets) >= 0, weights, 0.0), dtype=torch.float32)
    batch_size = min(batch_size, len(dataset))
    steps_per_epoch = max(1, len(dataset) // batch_size)
    total = steps_per_epoch * epochs
    rng = np.random.default_rng(seed)
    for epoch in range(epochs):
        order = rng.permutation(len(dataset))
        bar = progress_of(range(steps_per_epoch), desc=f"fine-tune {epoch + 1}/{epochs}", enabled=progress, unit="step")
        for i in bar:
            step = epoch * steps_per_epoch + i
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(step, total, lr, "cosine", warmup_steps=0)
            positions = order[i * batch_size:(i + 1) * batch_size]
            x = dataset.batch(positions).to(device)
            mu, logvar = model.encode(random_shift(model.training_input(x), max_shift, generator))
            decoded = model.decode(model.reparameterize(mu, logvar))
            elbo = model.reconstruction_nll(decoded, x) + kl_to_standard_normal(mu, logvar)
            batch_targets = target_t[positions].to(device)
            batch_weights = weight_t[positions].to(device)
            ce = F.cross_entropy(head(mu), batch_targets.clamp_min(0), reduction="none") * batch_weights
            loss = elbo.mean() + label_weight * ce.mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if i % 20 == 0:
                bar.set_postfix(elbo=f"{elbo.mean().item():.1f}", ce=f"{ce.mean().item():.3f}")
    return model.eval()
