"""Fitting a VAE to a dataset: the run around the one loop (vae_tools/training/loop.py) -- the
validation split, early stopping, the best epoch, checkpoints, resume and the run folder."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import inspect
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from tqdm.auto import tqdm

from vae_tools import device_settings, distributed, run_folder
from vae_tools.anomaly.reference import reference_of, save_reference
from vae_tools.atomic import write_json
from vae_tools.config import DEFAULT_EPOCHS, TrainConfig
from vae_tools.data import ImageDataset
from vae_tools.data.pixel_histogram import choose_likelihood
from vae_tools.device import resolve_device
from vae_tools.errors import ConfigError, RunFolderError, VaeToolsError
from vae_tools.generation.summary import save_latent_summary, summarise_latents
from vae_tools.models import get_model_class
from vae_tools.models.base import BaseVAE
from vae_tools.models.defaults import MIN_STEPS
from vae_tools.training.budget import budget_minutes, epochs_within
from vae_tools.training.curves import save_history
from vae_tools.training.loop import IN_MEMORY_LIMIT_BYTES, BatchObjective, EpochLoop, adamw, memory_format_for
from vae_tools.training.precision import precision
from vae_tools.training.seeding import keeps_global_rng
from vae_tools.training.working_size import PROBE_IMAGES, measured_pace, working_size


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
    if config.likelihood == "auto" or config.model == "auto":
        raise ConfigError("model and likelihood 'auto' are decided from the images when training; to build a "
                          "model directly, name both")
    model_class = get_model_class(config.model)
    # An unset size (None) is the model's own default.
    params = {name: getattr(config, name) for name in constructor_parameters(model_class)
              if name in TrainConfig.__dataclass_fields__ and getattr(config, name) is not None}
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
    """A new run may reuse a folder that never finished an epoch, but never overwrite trained work,
    nor a file of a run folder's names that training did not write (a user's own config.json)."""
    if run_dir.exists() and not run_dir.is_dir():
        raise RunFolderError(f"{run_dir}: exists and is not a folder")
    if run_folder.holds_epochs(run_dir) or (run_dir / run_folder.STATE_FILE).exists() or \
            (run_dir / run_folder.WEIGHTS_FILE).exists():
        raise RunFolderError(f"{run_dir}: already holds a run; pass `resume` to continue it or pick another `out_dir`")
    present = [name for name in run_folder.RUN_FILES if (run_dir / name).exists() or (run_dir / name).is_symlink()]
    if present and not run_folder.started_here(run_dir):
        raise RunFolderError(f"{run_dir / present[0]}: exists and is not a file of a vaetools run; training writes "
                             "that name: move it away or pick another `out_dir`")


def split_train_val(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    n_val = int(round(n * fraction)) if n >= 10 else 0
    return np.sort(order[n_val:]), np.sort(order[:n_val])


@keeps_global_rng
def train(
    dataset: ImageDataset,
    config: TrainConfig,
    out_dir: Optional[str | Path] = None,
    resume: bool = False,
    progress: bool = True,
    allow_other_data: bool = False,
) -> TrainResult:
    """Fit a VAE to ``dataset``; with ``out_dir``, every epoch is saved there and ``resume`` continues it
    (on the images it was trained on, by their ids and count, unless ``allow_other_data``).

    Inside a torch.distributed process group (``torchrun``) every process runs this with the same
    arguments: each takes its share of every batch (``batch_size`` stays the global batch), DDP
    averages the gradients, the validation loss is summed over the processes so that early stopping
    and the best epoch agree everywhere, and only the first process writes ``out_dir``."""
    config.validate()
    world, main = distributed.world_size(), distributed.is_main_process()
    if config.batch_size is not None and config.batch_size < world:
        raise ConfigError(f"batch_size {config.batch_size} is smaller than the {world} processes sharing each batch")
    progress = progress and main
    device = distributed.local_device(resolve_device(config.device))
    run_dir = Path(out_dir) if out_dir is not None else None
    if run_dir is not None and not resume:
        check_new_run_dir(run_dir)
    workers = device_settings.workers_choice(config, device, dataset.reader, world)
    train_pos, val_pos = split_train_val(len(dataset), config.val_fraction, config.seed)
    config, choices = with_automatic_choices(config, dataset.subset(train_pos))
    choices["batch_size"] = device_settings.batch_choice(config, device, len(train_pos), world)
    choices["lr"] = device_settings.lr_choice(config, choices["batch_size"])
    # Stored decided, so that a resumed run keeps its batches and schedule on whatever device it resumes.
    config = dataclasses.replace(config, batch_size=choices["batch_size"]["value"], lr=choices["lr"]["value"])
    choices["image_size"] = distributed.from_main(image_size_choice(config, dataset, device, len(train_pos))
                                                  if main else None)
    config = dataclasses.replace(config, image_size=choices["image_size"]["value"])
    if tuple(dataset.image_size) != tuple(config.image_size):
        dataset = dataset.at_size(config.image_size)
    # Decode everything before the run folder is touched, so a bad image cannot leave a half-made run.
    dataset.load_into_memory(IN_MEMORY_LIMIT_BYTES, progress=progress, workers=workers["value"])
    train_set, val_set = dataset.subset(train_pos), (dataset.subset(val_pos) if len(val_pos) else None)
    torch.manual_seed(config.seed)
    model = build_model(config, dataset.shape).to(device, memory_format=memory_format_for(device))
    optimizer = adamw(model.parameters(), device, config.lr, config.weight_decay)
    batch_size = min(config.batch_size, len(train_set))
    steps_per_epoch = max(1, len(train_set) // batch_size)  # the last partial batch is dropped
    choices["precision"] = precision(config, model, device)
    minutes = budget_minutes(config, model, device)
    length = choices["training_length"] = training_length(config, steps_per_epoch, model.stops_early, minutes,
                                                          model.min_steps)
    choices["compile"] = device_settings.compile_choice(config, device, length["epochs"] * len(train_set))
    choices["workers"] = workers
    state = {"epoch": 0, "best_val": float("inf"), "best_epoch": 0, "bad_epochs": 0, "history": []}
    if run_dir is not None:
        if resume:
            if not allow_other_data:
                check_same_data(run_folder.read_run_config(run_dir).get("data", {}), dataset, run_dir)
            state.update(run_folder.load_training_state(run_dir, model, optimizer))
            _match_parameter_layout(optimizer)
            # The stored configuration is already decided; keep the reasons given when it was.
            earlier = {k: v for k, v in run_folder.read_run_config(run_dir).get("choices", {}).items()
                       if isinstance(v, dict)}
            choices = {**earlier, **{k: v for k, v in choices.items() if v.get("automatic", True)}}
        if main:
            _start_run_folder(run_dir, model, config, dataset, {**choices, "processes": world})
    if progress:
        for name, choice in choices.items():
            if worth_saying(choice):
                tqdm.write(f"{name.replace('_', ' ')}: {choice['why']}")
    # A resumed run's history gives the pace its budget is planned at, as it did before the interruption.
    planned = epochs_within(minutes, [row["seconds"] for row in state["history"]], length["epochs"])
    loop_config = dataclasses.replace(config, amp=choices["precision"]["value"] != "fp32",
                                      compile=choices["compile"]["value"], workers=choices["workers"]["value"])
    loop = EpochLoop(BatchObjective(model), optimizer, loop_config, device, train_set, steps_per_epoch, batch_size,
                     planned, progress)
    epochs = _Epochs(loop, model, optimizer, val_set, batch_size, state, run_dir if main else None, progress)
    try:
        stopped_early = epochs.run(length, minutes)
    except KeyboardInterrupt:
        kept = f"; {run_dir} keeps every completed epoch" if run_dir is not None else ""
        raise TrainingInterrupted(f"training interrupted after epoch {state['epoch']}{kept}") from None
    if run_dir is not None and main:
        _finish_run_folder(run_dir, model, train_set, state["history"], config.seed)
    elif epochs.best_weights is not None:
        model.load_state_dict(epochs.best_weights)
    if run_dir is not None:  # every process: the pass over the reference images is shared out
        reference = reference_of(model.eval(), train_set, seed=config.seed, device=device,
                                 described="training images", progress=progress)
        if main:
            save_reference(run_dir, reference)
    distributed.barrier()
    return TrainResult(model.eval(), state["history"], state["best_epoch"], stopped_early, run_dir)


def image_size_choice(config: TrainConfig, dataset: ImageDataset, device: torch.device, n_train: int) -> dict:
    """The working size (working_size.py): the planned epochs and the budget of this configuration,
    and the pace of its model's training step measured here on a few of the images."""
    model_class = get_model_class(config.model)
    minutes = budget_minutes(config, model_class, device)
    steps_per_epoch = max(1, n_train // min(config.batch_size, n_train))
    # The size is planned for the basic length; a model that asks for more steps gets them as the budget allows.
    planned = training_length(config, steps_per_epoch, model_class.stops_early, minutes)["epochs"]
    sample = np.arange(min(PROBE_IMAGES, config.batch_size, len(dataset)))
    pace = measured_pace(lambda size: build_model(config, (dataset.channels, *size)),
                         lambda size: dataset.at_size(size).batch(sample), device)
    return working_size(config, dataset.image_size, n_train, planned, minutes, pace)


def worth_saying(choice) -> bool:
    """Whether a recorded choice is told to the user: made automatically, and not one that every
    CPU run makes alike (``plain``)."""
    return isinstance(choice, dict) and bool(choice.get("why")) and choice.get("automatic", True) \
        and not choice.get("plain")


def with_automatic_choices(config: TrainConfig, train_set: ImageDataset) -> tuple[TrainConfig, dict]:
    """``config`` with its ``auto`` settings decided from the training images, and each decision
    with its reason (config.json's "choices"; `vaetools train` prints them)."""
    choices = {}
    if config.likelihood == "auto" and config.model == "photo":
        choices["likelihood"] = {"value": "gaussian", "automatic": False, "why": "the photo model's likelihood"}
        config = dataclasses.replace(config, likelihood="gaussian")
    elif config.likelihood == "auto":
        choice = choose_likelihood(train_set, config.seed)
        config = dataclasses.replace(config, likelihood=choice["value"])
        choices["likelihood"] = choice
    else:
        choices["likelihood"] = {"value": config.likelihood, "automatic": False, "why": "set by the user"}
    if config.model == "auto":
        photos = config.likelihood == "gaussian"
        why = ("continuous-tone images (as the likelihood's choice found), so the photo model: a residual "
               "encoder also trained to give crops, flips and colour changes of an image one code"
               if photos else "strokes or shapes on a plain background, so the conv model (no flips or crops, "
                              "which would change what a stroke means)")
        choices["model"] = {"value": "photo" if photos else "conv", "why": why}
        config = dataclasses.replace(config, model=choices["model"]["value"])
    else:
        choices["model"] = {"value": config.model, "automatic": False, "why": "set by the user"}
    return config, choices


def data_record(dataset: ImageDataset) -> dict:
    """What identifies the training images in config.json: their source, count and ids (a digest)."""
    ids = hashlib.sha256("\n".join(map(str, dataset.ids)).encode()).hexdigest()
    return {"source": dataset.name, "n_samples": len(dataset), "labelled": dataset.has_labels, "ids_sha256": ids}


def check_same_data(recorded: dict, dataset: ImageDataset, run_dir: Path) -> None:
    """Resuming on other images of the same shape would train on them silently and rewrite the
    run's record of what it learnt from."""
    now = data_record(dataset)
    differs = [key for key in ("n_samples", "ids_sha256") if key in recorded and recorded[key] != now[key]]
    if differs:
        raise ConfigError(f"{run_dir}: was trained on {recorded.get('source')} ({recorded.get('n_samples')} images), "
                          f"not on {now['source']} ({now['n_samples']} images{', other ids' if 'ids_sha256' in differs else ''}); "
                          "resume it with the data it was trained on, or allow other data to continue on these")


def _start_run_folder(run_dir: Path, model: BaseVAE, config: TrainConfig, dataset: ImageDataset, choices: dict) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    data_info = data_record(dataset)
    write_json(run_dir / run_folder.CONFIG_FILE,
               {**run_folder.run_config(model, config.to_dict(), data_info), "choices": choices})


def _finish_run_folder(run_dir: Path, model: BaseVAE, train_set: ImageDataset, history: list, seed: int) -> None:
    """The loss history, the best epoch's weights back in ``model``, and the latent summary."""
    save_history(history, run_dir)
    run_folder.load_state_into(model, run_dir / run_folder.WEIGHTS_FILE)
    save_latent_summary(run_dir, summarise_latents(model, train_set, seed=seed))


class _Epochs:
    """Epoch after epoch until the length or the patience runs out: validate, keep the best, save."""

    def __init__(self, loop: EpochLoop, model: BaseVAE, optimizer, val_set: Optional[ImageDataset], batch_size: int,
                 state: dict, run_dir: Optional[Path], progress: bool):
        self.loop, self.model, self.optimizer, self.val_set = loop, model, optimizer, val_set
        self.batch_size, self.state, self.run_dir, self.progress = batch_size, state, run_dir, progress
        self.best_weights = None  # kept in memory only when no run folder holds the best epoch

    def run(self, length: dict, minutes: Optional[float] = None) -> bool:
        """Train the remaining epochs (those ``loop.max_epochs`` plans: cut to fit ``minutes`` after
        each epoch, when there is a budget); True when early stopping ended the run."""
        epoch = self.state["epoch"]
        while epoch < self.loop.max_epochs:
            epoch += 1
            row = self.train_and_validate(epoch)
            self.state["history"].append(row)
            is_best = self.record(row)
            planned = self.loop.max_epochs
            self.loop.max_epochs = epochs_within(minutes, [r["seconds"] for r in self.state["history"]], planned)
            if self.progress:
                self.report(row)
                self.report_length(epoch, row["seconds"], planned, minutes)
            if self.run_dir is not None:
                run_folder.save_checkpoint(self.run_dir, self.model, self.optimizer, self.state, is_best)
            if self.state["bad_epochs"] >= length["patience"]:
                if self.progress:
                    tqdm.write(f"early stop: no improvement for {length['patience']} epochs "
                               f"(best epoch {self.state['best_epoch']})")
                return True
        return False

    def train_and_validate(self, epoch: int) -> dict:
        loop = self.loop
        row = loop.run_epoch(epoch)
        val = evaluate(self.model, self.val_set, loop.config, loop.device, self.batch_size) if self.val_set else None
        seconds = time.perf_counter() - row.pop("started")
        # Every process plans a budget's epochs from the main process's clock, so that they stop together.
        seconds = float(distributed.sum_across(torch.tensor([seconds if distributed.is_main_process() else 0.0]))[0])
        row.update({"val_loss": val[0] if val else np.nan, "val_recon": val[1] if val else np.nan,
                    "val_kl": val[2] if val else np.nan, "seconds": seconds})
        return row

    def record(self, row: dict) -> bool:
        """Update the early-stopping state with epoch ``row``; True when it is the best so far."""
        state, epoch = self.state, row["epoch"]
        monitored = row["val_loss"] if self.val_set else row["train_loss"]
        if not np.isfinite(monitored):
            raise VaeToolsError(f"training diverged at epoch {epoch} (the loss is not finite); try a lower lr")
        # A model trained on a term of its own beside the ELBO keeps learning what the validation ELBO
        # does not see: its last epoch is kept, and the run is not stopped early.
        is_best = improved(monitored, state["best_val"]) or not self.model.stops_early
        if is_best:
            state.update(best_val=monitored, best_epoch=epoch, bad_epochs=0)
            if self.run_dir is None:
                self.best_weights = copy.deepcopy(self.model.state_dict())
        elif epoch > self.loop.config.kl_warmup_epochs and self.model.stops_early:
            state["bad_epochs"] += 1
        state["epoch"] = epoch
        return is_best

    def report_length(self, epoch: int, seconds: float, planned: int, minutes: Optional[float]) -> None:
        """After this session's first epoch, how long the rest will take; after any, a budget's cut."""
        total = self.loop.max_epochs
        if total < planned:
            tqdm.write(f"the {minutes:g}-min training budget fits {total} epochs at this pace, not {planned} "
                       f"(set budget_minutes for a longer one, or epochs for a fixed length)")
        elif epoch == self.state["history"][0]["epoch"] and epoch < total:
            left = total - epoch
            tqdm.write(f"at this pace the other {left} epochs take about {seconds * left / 60:.0f} min"
                       f"{' (or less, if it stops early)' if self.model.stops_early else ''}")

    @staticmethod
    def report(row: dict) -> None:
        val_text = f", val {row['val_loss']:.2f}" if np.isfinite(row["val_loss"]) else ""
        tqdm.write(f"epoch {row['epoch']}: loss {row['train_loss']:.2f} (recon {row['train_recon']:.2f}, "
                   f"kl {row['train_kl']:.2f}){val_text}, {row['seconds']:.1f}s")


def _match_parameter_layout(optimizer) -> None:
    """Give resumed optimizer moments their parameter's memory layout: stored tensors come back
    contiguous while channels_last weights are not, and fused AdamW needs both the same."""
    for param, moments in optimizer.state.items():
        for key, value in moments.items():
            if torch.is_tensor(value) and value.shape == param.shape:
                moments[key] = torch.empty_like(param).copy_(value)


def training_length(config: TrainConfig, steps_per_epoch: int, stops_early: bool = True,
                    minutes: Optional[float] = None, min_steps: int = MIN_STEPS) -> dict:
    """The most epochs to run and the early-stopping patience. Set epochs are taken as they are. By
    default a run gets at least ``min_steps`` optimisation steps: a fixed epoch count leaves small
    data sets undertrained (30 epochs of 1,617 digits are 360 steps, and the best epoch was the last),
    and early stopping on the validation loss ends it when it stops improving; patience stretches
    with the epochs so that it covers the same share of the run."""
    if config.epochs is not None:
        return {"epochs": config.epochs, "patience": config.patience, "why": "epochs set by the user", "automatic": False}
    min_steps = config.min_steps or min_steps  # the model's own unless set
    epochs = max(DEFAULT_EPOCHS, math.ceil(min_steps / steps_per_epoch))
    patience = math.ceil(config.patience * epochs / DEFAULT_EPOCHS)
    ending = (f"stopping after {patience} epochs without a better validation loss" if stops_early else
              "all of them run (this model does not stop early: the validation ELBO does not measure what it learns)")
    why = (f"{'up to ' if stops_early else ''}{epochs} epochs ({steps_per_epoch} steps each; at least {DEFAULT_EPOCHS} epochs and "
           f"{min_steps} steps), {ending}")
    if minutes:
        why += (f"; within a training budget of {minutes:g} min, fewer epochs if they do not fit at the pace "
                "of the epochs run")
    return {"epochs": epochs, "patience": patience, "why": why,
            **({"budget_minutes": minutes} if minutes else {})}


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
