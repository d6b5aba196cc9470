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

from vae_tools.config import TrainConfig
from vae_tools.data import ImageDataset
from vae_tools.models.base import BaseVAE
from vae_tools.training.loop import IN_MEMORY_LIMIT_BYTES, BatchObjective, EpochLoop, adamw, memory_format_for
from vae_tools.training.seeding import keeps_global_rng


class LabelObjective(BatchObjective):
    """The model's ELBO terms on random views of the inputs (``model.labelled_view``: pixel shifts,
    or a photo model's crops, flips and colour changes) plus ``label_weight`` x the weighted
    cross-entropy of a linear head on mu. ``targets`` holds a class index per training row (-1: no
    target); ``weights`` scales each one. The head is a submodule, so the optimiser and DDP see it.
    Without ``elbo`` only the encoder and the head are trained (the decoder is never run): the
    cross-entropy alone, at about a third of the cost of a step."""

    needs_positions = True

    def __init__(self, model: BaseVAE, targets: np.ndarray, weights: np.ndarray, n_classes: int,
                 label_weight: float, max_shift: int, seed: int, elbo: bool = True):
        super().__init__(model)
        self.elbo = elbo
        self.head = nn.Linear(model.latent_dim, n_classes)
        targets = np.asarray(targets)
        self.register_buffer("targets", torch.as_tensor(targets, dtype=torch.long).clamp_min(0), persistent=False)
        self.register_buffer("weights", torch.as_tensor(np.where(targets >= 0, weights, 0.0), dtype=torch.float32),
                             persistent=False)
        self.label_weight, self.max_shift = label_weight, max_shift
        self.generator = torch.Generator().manual_seed(seed)

    def forward(self, x: torch.Tensor, positions: torch.Tensor):
        model = self.model
        shifted = model.labelled_view(x, self.max_shift, self.generator)
        if self.elbo:
            out = model(shifted)
            recon, kl = model.output_loss_terms(out, x)
            mu = out.mu
        else:
            mu, _ = model.encode(shifted)
            recon = kl = torch.zeros(len(x), device=x.device)
        rows = positions.to(x.device, non_blocking=True)
        ce = F.cross_entropy(self.head(mu.float()), self.targets[rows], reduction="none") * self.weights[rows]
        return recon, kl, self.label_weight * ce.mean()


@keeps_global_rng
def fine_tune_on_labels(
    model: BaseVAE,
    dataset: ImageDataset,
    targets: np.ndarray,
    weights: np.ndarray,
    n_classes: int,
    *,
    epochs: int = 2,
    label_weight: float = 100.0,
    lr: float = 1e-3,
    batch_size: int = 128,
    max_shift: int = 2,
    elbo: bool = True,
    amp: bool = False,
    warmup_steps: int = 0,
    device: torch.device | str = "cpu",
    seed: int = 0,
    progress: bool = True,
) -> nn.Module:
    """Train ``model`` in place on ELBO + ``label_weight`` x weighted cross-entropy of a linear head
    on mu (:class:`LabelObjective`), through the same loop as :func:`vae_tools.training.train`, for
    ``epochs`` full passes under a cosine learning-rate decay. ``targets`` holds a class index per
    sample (-1: no target); ``weights`` scales each one. Without ``elbo`` the decoder is left as it is
    and only the encoder learns (the latents then serve the labels, not generation); ``amp``:
    bf16 autocast where the device has it natively (about 2x per step on such a CPU)."""
    device = torch.device(device)
    torch.manual_seed(seed)
    dataset.load_into_memory(IN_MEMORY_LIMIT_BYTES, progress=progress)
    config = TrainConfig(epochs=epochs, lr=lr, batch_size=batch_size, warmup_steps=warmup_steps, val_fraction=0.0,
                         seed=seed, amp=amp)
    objective = LabelObjective(model, targets, weights, n_classes, label_weight, max_shift, seed, elbo)
    objective.to(device, memory_format=memory_format_for(device))
    optimizer = adamw(objective.parameters(), device, lr)
    batch_size = min(batch_size, len(dataset))
    steps_per_epoch = max(1, len(dataset) // batch_size)
    loop = EpochLoop(objective, optimizer, config, device, dataset, steps_per_epoch, batch_size, epochs, progress)
    for epoch in range(1, epochs + 1):
        loop.run_epoch(epoch)
    return model.eval()
