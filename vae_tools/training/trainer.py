"""The training loop: the torch module is built elsewhere; this only fits it to a dataset."""

from __future__ import annotations

import contextlib
import copy
import inspect
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from vae_tools import run_folder
from vae_tools.atomic import write_json
from vae_tools.config import DEFAULT_EPOCHS, TrainConfig
from vae_tools.data import ImageDataset
from vae_tools.device import resolve_device
from vae_tools.errors import ConfigError, RunFolderError, VaeToolsError
from vae_tools.models import get_model_class
from vae_tools.models.base import BaseVAE
from vae_tools.training import distributed
from vae_tools.training.curves import save_history
from vae_tools.training.schedule import kl_weight, learning_rate
from vae_tools.training.seeding import keeps_global_rng
from vae_tools.progress import progress as progress_of

IN_MEMORY_LIMIT_BYTES = 4 << 30


class TrainingInterrupted(VaeToolsError):
    """Raised on Ctrl-C after the last completed epoch has been saved."""


@dataclass
class TrainResult:
    model: BaseVAE
    history: list = field(default_factory=list)
    best_epoch: int = 0
    stopped_early: bool = False
    run_dir: Optional[Path] = None


def build_model(config: TrainConfig, image_shape: tuple[int, int, int]) -> BaseVAE:
    """The registered model ``config.model``, given every option of ``config`` its constructor takes."""
    model_class = get_model_class(config.model)
    params = {name: getattr(config, name) for name in constructor_parameters(model_class)
              if name in TrainConfig.__dataclass_fields__}
    return model_class(image_shape=image_shape, **params)


def constructor_parameters(model_class: type) -> set:
    """The keyword arguments ``model_class`` takes, following ``**kwargs`` up to the base classes."""
    names = set()
    for cls in model_class.__mro__:
        if "__init__" not in vars(cls):
            continue
        parameters = inspect.signature(cls.__init__).parameters.values()
        names |= {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        if not any(p.kind == p.VAR_KEYWORD for p in parameters):
            break
    return names - {"self"}


def check_new_run_dir(run_dir: Path) -> None:
    """A new run may reuse a folder that never finished an epoch, but never overwrite trained work."""
    if run_dir.exists() and not run_dir.is_dir():
        raise RunFolderError(f"{run_dir}: exists and is not a folder")
    if (run_dir / run_folder.STATE_FILE).exists() or (run_dir / run_folder.WEIGHTS_FILE).exists():
        raise RunFolderError(f"{run_dir}: already holds a run; pass --resume to continue it or pick another --out")


def split_train_val(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    n_val = int(round(n * fraction)) if n >= 10 else 0
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def _autocast(device: torch.device, enabled: bool):
    if not enabled or device.type != "cuda":
        return contextlib.nullcontext(), None
    if torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.bfloat16), None
    return torch.autocast("cuda", dtype=torch.float16), torch.amp.GradScaler("cuda")


class BatchObjective(nn.Module):
    """A model's per-batch loss terms as a forward pass: DDP synchronises gradients only for work
    done through the forward of the module it wraps, and torch.compile compiles a forward."""

    def __init__(self, model: BaseVAE):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.loss_terms(self.model.training_input(x), x)


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


@keeps_global_rng
def train(
    dataset: ImageDataset,
    config: TrainConfig,
    out_dir: Optional[str | Path] = None,
    resume: bool = False,
    progress: bool = True,
) -> TrainResult:
    """Fit a VAE to ``dataset``; with ``out_dir``, every epoch is saved there and ``resume`` continues it.

    Inside a torch.distributed process group (``torchrun``) every process runs this with the same
    arguments: each takes its share of every batch (``batch_size`` stays the global batch), DDP
    averages the gradients, the validation loss is summed over the processes so that early stopping
    and the best epoch agree everywhere, and only the first process writes ``out_dir``."""
    config.validate()
    world, main = distributed.world_size(), distributed.is_main_process()
    if config.batch_size < world:
        raise ConfigError(f"batch_size {config.batch_size} is smaller than the {world} processes sharing each batch")
    progress = progress and main
    device = distributed.local_device(resolve_device(config.device))
    torch.manual_seed(config.seed)
    # channels_last lets oneDNN / cuDNN pick faster convolution kernels (measured ~10% per step on CPU).
    memory_format = torch.channels_last if device.type in ("cpu", "cuda") else torch.contiguous_format
    model = build_model(config, dataset.shape).to(device, memory_format=memory_format)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay,
                                  fused=device.type == "cuda")
    run_dir = Path(out_dir) if out_dir is not None else None
    if run_dir is not None and not resume:
        check_new_run_dir(run_dir)
    # Decode everything before the run folder is touched, so a bad image cannot leave a half-made run.
    dataset.load_into_memory(IN_MEMORY_LIMIT_BYTES, progress=progress, workers=config.workers)

    train_pos, val_pos = split_train_val(len(dataset), config.val_fraction, config.seed)
    train_set, val_set = dataset.subset(train_pos), (dataset.subset(val_pos) if len(val_pos) else None)
    batch_size = min(config.batch_size, len(train_set))
    steps_per_epoch = max(1, len(train_set) // batch_size)  # the last partial batch is dropped
    length = training_length(config, steps_per_epoch)

    state = {"epoch": 0, "best_val": float("inf"), "best_epoch": 0, "bad_epochs": 0, "history": []}
    if run_dir is not None:
        if resume:
            state.update(run_folder.load_training_state(run_dir, model, optimizer))
            _match_parameter_layout(optimizer)
        if main:
            run_dir.mkdir(parents=True, exist_ok=True)
            data_info = {"source": dataset.name, "n_samples": len(dataset), "labelled": dataset.has_labels}
            choices = {"training_length": length, "processes": world}
            write_json(run_dir / run_folder.CONFIG_FILE,
                       {**run_folder.run_config(model, config.to_dict(), data_info), "choices": choices})
    if progress and config.epochs is None:
        tqdm.write(f"training length: {length['why']}")
    objective = BatchObjective(model)
    if config.compile:
        # CUDA graphs replay a whole step's kernels at once; DDP's gradient hooks need ordinary launches.
        graphs = device.type == "cuda" and world == 1
        objective = torch.compile(objective, mode="reduce-overhead" if graphs else None)
    if world > 1:
        objective = torch.nn.parallel.DistributedDataParallel(
            objective, device_ids=[device.index] if device.type == "cuda" else None)
        torch.manual_seed(config.seed + distributed.rank())  # the same weights, different noise draws
    loop = _Loop(objective, model, optimizer, config, device, batch_fetcher(train_set, device, memory_format),
                 steps_per_epoch, batch_size, length["epochs"], progress)

    best_weights, stopped_early, history = None, False, state["history"]
    try:
        for epoch in range(state["epoch"] + 1, length["epochs"] + 1):
            row = loop.run_epoch(epoch, len(train_set))
            val = evaluate(model, val_set, config, device, batch_size) if val_set is not None else None
            row.update({"val_loss": val[0] if val else np.nan, "val_recon": val[1] if val else np.nan,
                        "val_kl": val[2] if val else np.nan, "seconds": time.perf_counter() - row.pop("started")})
            history.append(row)
            monitored = row["val_loss"] if val else row["train_loss"]
            if not np.isfinite(monitored):
                raise VaeToolsError(f"training diverged at epoch {epoch} (the loss is not finite); try a lower lr")
            is_best = improved(monitored, state["best_val"])
            if is_best:
                state.update(best_val=monitored, best_epoch=epoch, bad_epochs=0)
                if run_dir is None or not main:
                    best_weights = copy.deepcopy(model.state_dict())
            elif epoch > config.kl_warmup_epochs:
                state["bad_epochs"] += 1
            state["epoch"] = epoch
            if progress:
                val_text = f", val {row['val_loss']:.2f}" if val else ""
                tqdm.write(f"epoch {epoch}: loss {row['train_loss']:.2f} (recon {row['train_recon']:.2f}, "
                           f"kl {row['train_kl']:.2f}){val_text}, {row['seconds']:.1f}s")
            if run_dir is not None and main:
                run_folder.save_checkpoint(run_dir, model, optimizer, state, is_best)
            if state["bad_epochs"] >= length["patience"]:
                stopped_early = True
                if progress:
                    tqdm.write(f"early stop: no improvement for {length['patience']} epochs "
                               f"(best epoch {state['best_epoch']})")
                break
    except KeyboardInterrupt:
        if run_dir is not None and main:
            save_history(history, run_dir)
        kept = f"; {run_dir} keeps every completed epoch" if run_dir is not None else ""
        raise TrainingInterrupted(f"training interrupted after epoch {state['epoch']}{kept}") from None

    if run_dir is not None and main:
        save_history(history, run_dir)
        run_folder.load_state_into(model, run_dir / run_folder.WEIGHTS_FILE)
        # Imported here: generation encodes through vae_tools.embedding, which needs this package.
        from vae_tools.generation.summary import save_latent_summary, summarise_latents

        save_latent_summary(run_dir, summarise_latents(model, train_set, seed=config.seed))
    elif best_weights is not None:
        model.load_state_dict(best_weights)
    distributed.barrier()
    return TrainResult(model.eval(), history, state["best_epoch"], stopped_early, run_dir)


def _match_parameter_layout(optimizer) -> None:
    """Give resumed optimizer moments their parameter's memory layout: stored tensors come back
    contiguous while channels_last weights are not, and fused AdamW needs both the same."""
    for param, moments in optimizer.state.items():
        for key, value in moments.items():
            if torch.is_tensor(value) and value.shape == param.shape:
                moments[key] = torch.empty_like(param).copy_(value)


class _Loop:
    """One epoch of optimisation steps. Loss sums stay on the device until the epoch ends: reading
    them every step would make the host wait for the GPU each time."""

    def __init__(self, objective, model, optimizer, config, device, fetch, steps_per_epoch, batch_size,
                 max_epochs, progress):
        self.objective, self.model, self.optimizer, self.config = objective, model, optimizer, config
        self.device, self.fetch, self.steps, self.batch_size = device, fetch, steps_per_epoch, batch_size
        self.max_epochs, self.progress = max_epochs, progress
        self.autocast, self.scaler = _autocast(device, config.amp)

    def run_epoch(self, epoch: int, n_train: int) -> dict:
        config, started = self.config, time.perf_counter()
        self.model.train()
        fetch = self.fetch(np.random.default_rng(config.seed + epoch).permutation(n_train))
        sums = torch.zeros(3, device=self.device)
        bar = progress_of(range(self.steps), desc=f"epoch {epoch}/{self.max_epochs}", enabled=self.progress, unit="step")
        total_steps = self.steps * self.max_epochs
        for i in bar:
            step = (epoch - 1) * self.steps + i
            lr = learning_rate(step, total_steps, config.lr, config.lr_schedule, config.warmup_steps)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            beta = kl_weight(step, self.steps, config.beta, config.kl_warmup_epochs)
            x = fetch(distributed.my_part_of_batch(slice(i * self.batch_size, (i + 1) * self.batch_size)))
            with self.autocast:
                recon, kl = self.objective(x)
                loss = (recon + beta * kl).mean()
            self.optimizer.zero_grad(set_to_none=True)
            if self.scaler is not None:
                self.scaler.scale(loss).backward()
                self.scaler.step(self.optimizer)
                self.scaler.update()
            else:
                loss.backward()
                self.optimizer.step()
            sums += torch.stack((loss.detach(), recon.detach().mean(), kl.detach().mean())).float()
            if self.progress and i % 10 == 0:
                means = (sums / (i + 1)).tolist()
                bar.set_postfix(loss=f"{means[0]:.2f}", recon=f"{means[1]:.2f}", kl=f"{means[2]:.2f}")
        means = (distributed.sum_across(sums) / (self.steps * distributed.world_size())).tolist()
        return {"epoch": epoch, "train_loss": means[0], "train_recon": means[1], "train_kl": means[2],
                "lr": lr, "beta": beta, "started": started}


def training_length(config: TrainConfig, steps_per_epoch: int) -> dict:
    """The most epochs to run and the early-stopping patience. Set epochs are taken as they are. By
    default a run gets at least ``min_steps`` optimisation steps: a fixed epoch count leaves small
    data sets undertrained (30 epochs of 1,617 digits are 360 steps, and the best epoch was the last),
    and early stopping on the validation loss ends it when it stops improving; patience stretches
    with the epochs so that it covers the same share of the run."""
    if config.epochs is not None:
        return {"epochs": config.epochs, "patience": config.patience, "why": "epochs set by the user"}
    epochs = max(DEFAULT_EPOCHS, math.ceil(config.min_steps / steps_per_epoch))
    patience = math.ceil(config.patience * epochs / DEFAULT_EPOCHS)
    why = (f"up to {epochs} epochs ({steps_per_epoch} steps each; at least {DEFAULT_EPOCHS} epochs and "
           f"{config.min_steps} steps), stopping after {patience} epochs without a better validation loss")
    return {"epochs": epochs, "patience": patience, "why": why}


def improved(value: float, best: float, rel_tol: float = 1e-4) -> bool:
    return not np.isfinite(best) or value < best - rel_tol * abs(best)


@torch.no_grad()
def evaluate(model: BaseVAE, data: ImageDataset, config: TrainConfig, device: torch.device, batch_size: int):
    """Mean (loss, reconstruction NLL, KL) per image; denoising inputs use a fixed noise seed. Under
    torch.distributed each process scores its own block and the sums are added up, so every process
    gets the same numbers."""
    model.eval()
    generator = torch.Generator(device=device).manual_seed(config.seed + distributed.rank())
    start, stop = distributed.contiguous_share(len(data))
    totals = torch.zeros(3, dtype=torch.float64, device=device)
    share = data.subset(np.arange(start, stop)) if stop > start else None
    for _, x in share.iter_batches(batch_size * 2) if share is not None else ():
        x = x.to(device)
        recon, kl = model.loss_terms(model.training_input(x, generator), x)
        totals += torch.stack(((recon + config.beta * kl).sum(), recon.sum(), kl.sum())).double()
    return tuple((distributed.sum_across(totals) / len(data)).tolist())
