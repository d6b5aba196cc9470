"""The one optimisation loop: an epoch of steps over a per-batch objective.

A model gives its per-batch loss terms (``BaseVAE.loss_terms``); an objective may add a term of its
own (label fine-tuning adds a classifier's cross-entropy) and gets the same loop: the learning-rate
and KL schedules, bf16/fp16 autocast, channels_last batches, torch.compile, DDP and on-device loss
sums, as PyOD's ``base_dl.py`` has one ``train`` and each model supplies its ``training_forward``."""

from __future__ import annotations

import contextlib
import time
from typing import Optional

import numpy as np
import torch
from torch import nn

from vae_tools.config import TrainConfig
from vae_tools.data import ImageDataset
from vae_tools.models.base import BaseVAE
from vae_tools.progress import progress as progress_of
from vae_tools import distributed
from vae_tools.training.schedule import kl_weight, learning_rate

IN_MEMORY_LIMIT_BYTES = 4 << 30


class BatchObjective(nn.Module):
    """A model's per-batch loss terms as a forward pass: DDP synchronises gradients only for work
    done through the forward of the module it wraps, and torch.compile compiles a forward.

    ``forward`` returns the per-image reconstruction NLL, the per-image KL and one extra scalar loss.
    An objective that keeps something per training row sets ``needs_positions`` and is also given the
    batch's rows (a CPU tensor); the plain one is not, so that a compiled step has no host input."""

    needs_positions = False

    def __init__(self, model: BaseVAE):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.model.training_terms(x)


def memory_format_for(device: torch.device):
    # channels_last lets oneDNN / cuDNN pick faster convolution kernels (measured ~10% per step on CPU).
    return torch.channels_last if device.type in ("cpu", "cuda") else torch.contiguous_format


def adamw(parameters, device: torch.device, lr: float, weight_decay: float = 0.0) -> torch.optim.AdamW:
    """AdamW with its fused kernel on a GPU and, from torch 2.4, on a CPU: one pass over each
    parameter instead of a chain of per-operation passes (a bf16 step of the default 28x28 model
    took 17 ms fused against 24 ms on a 2-core CPU)."""
    fused = device.type == "cuda" or (device.type == "cpu" and torch.__version__ >= "2.4")
    return torch.optim.AdamW(parameters, lr=lr, weight_decay=weight_decay, fused=fused or None)


def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 natively (AVX512-BF16 or AMX), where oneDNN runs bf16
    convolutions about twice as fast as float32; elsewhere bf16 is emulated and slower."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def autocast_dtype(device: torch.device, enabled: bool) -> Optional[torch.dtype]:
    """What autocast computes in: bf16 where the GPU or the CPU has it natively, else fp16 on a GPU
    (with a gradient scaler) and None, full precision, on a CPU."""
    if not enabled or device.type not in ("cuda", "cpu"):
        return None
    if device.type == "cpu":
        return torch.bfloat16 if cpu_has_bf16() else None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def autocast_for(device: torch.device, enabled: bool):
    """(autocast context, gradient scaler or None) for :func:`autocast_dtype`."""
    dtype = autocast_dtype(device, enabled)
    if dtype is None:
        return contextlib.nullcontext(), None
    return torch.autocast(device.type, dtype=dtype), (torch.amp.GradScaler("cuda") if dtype == torch.float16 else None)


def _prepared(objective: BatchObjective, config: TrainConfig, device: torch.device) -> nn.Module:
    """``objective`` compiled when ``config.compile`` asks, and wrapped in DDP inside a process group."""
    world = distributed.world_size()
    if config.compile:
        # CUDA graphs replay a whole step's kernels at once; DDP's gradient hooks need ordinary launches.
        graphs = device.type == "cuda" and world == 1
        objective = torch.compile(objective, mode="reduce-overhead" if graphs else None)
    if world > 1:
        objective = torch.nn.parallel.DistributedDataParallel(
            objective, device_ids=[device.index] if device.type == "cuda" else None)
        torch.manual_seed(config.seed + distributed.rank())  # the same weights, different noise draws
    return objective


def batch_fetcher(data: ImageDataset, device: torch.device, memory_format):
    """(epoch order -> (global batch -> images on ``device``)). On a GPU a set already decoded into
    host memory is copied to the GPU once when it takes under a quarter of its free memory, and the
    epoch's order goes with it, so that a step never waits on the host or copies anything."""
    if device.type == "cuda" and data.in_memory:
        free, _ = torch.cuda.mem_get_info(device)
        if data.nbytes() < free // 4:
            resident = data.batch(np.arange(len(data))).to(device).contiguous(memory_format=memory_format)

            def on_device(order):
                order = torch.as_tensor(order, device=device)
                return lambda batch: resident[order[batch]]

            return on_device

    def from_host(order):
        return lambda batch: data.batch_on(order[batch], device).contiguous(memory_format=memory_format)

    return from_host


class EpochLoop:
    """One epoch of optimisation steps. Loss sums stay on the device until the epoch ends: reading
    them every step would make the host wait for the GPU each time."""

    def __init__(self, objective: BatchObjective, optimizer, config: TrainConfig, device: torch.device,
                 train_set: ImageDataset, steps_per_epoch: int, batch_size: int, max_epochs: int, progress: bool):
        self.needs_positions = objective.needs_positions
        self.objective = _prepared(objective, config, device)
        self.optimizer, self.config, self.device = optimizer, config, device
        self.fetch = batch_fetcher(train_set, device, memory_format_for(device))
        self.n_train, self.steps, self.batch_size = len(train_set), steps_per_epoch, batch_size
        self.max_epochs, self.progress = max_epochs, progress
        self.autocast, self.scaler = autocast_for(device, config.amp)

    def run_epoch(self, epoch: int) -> dict:
        """Train for epoch ``epoch`` (from 1); the mean losses over every process, the last lr and KL weight."""
        config, started = self.config, time.perf_counter()
        self.objective.train()
        order = np.random.default_rng(config.seed + epoch).permutation(self.n_train)
        fetch = self.fetch(order)
        sums = torch.zeros(3, device=self.device)
        bar = progress_of(range(self.steps), desc=f"epoch {epoch}/{self.max_epochs}", enabled=self.progress, unit="step")
        for i in bar:
            step = (epoch - 1) * self.steps + i
            lr = learning_rate(step, self.steps * self.max_epochs, config.lr, config.lr_schedule, config.warmup_steps)
            beta = kl_weight(step, self.steps, config.beta, config.kl_warmup_epochs)
            batch = distributed.my_part_of_batch(slice(i * self.batch_size, (i + 1) * self.batch_size))
            inputs = (fetch(batch), torch.from_numpy(order[batch])) if self.needs_positions else (fetch(batch),)
            loss, recon, kl = self._step(inputs, lr, beta)
            sums += torch.stack((loss.detach(), recon.detach().mean(), kl.detach().mean())).float()
            if self.progress and i % 10 == 0:
                means = (sums / (i + 1)).tolist()
                bar.set_postfix(loss=f"{means[0]:.2f}", recon=f"{means[1]:.2f}", kl=f"{means[2]:.2f}")
        means = (distributed.sum_across(sums) / (self.steps * distributed.world_size())).tolist()
        return {"epoch": epoch, "train_loss": means[0], "train_recon": means[1], "train_kl": means[2],
                "lr": lr, "beta": beta, "started": started}

    def _step(self, inputs: tuple, lr: float, beta: float):
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        with self.autocast:
            recon, kl, extra = self.objective(*inputs)
            loss = (recon + beta * kl).mean() + extra
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            self.optimizer.step()
        return loss, recon, kl
