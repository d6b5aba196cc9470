"""``vaetools train``: data source + configuration -> run folder."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import click

from vae_tools.config import DEFAULT_EPOCHS, TrainConfig
from vae_tools.models import list_models
from vae_tools.models.defaults import LATENT_DIM, MIN_STEPS, PHOTO_CPU_MINUTES, PHOTO_LATENT_DIM, PHOTO_MIN_STEPS
from vae_tools.device_settings import BASE_LR, CPU_BATCH_SIZE, GPU_BATCH_SIZE, GPU_WORKERS
from vaetools_pipelines import common_options as common
from vaetools_pipelines.option_types import image_size
from vaetools_pipelines.sections import Section, csv_rows
from vaetools_pipelines.step_api import Step, option

TRAINING = TrainConfig()  # the defaults --help shows; the options stay unset so that a --config preset applies
# What `--resume` may change: how long it goes on, and the hardware it runs on.
CHANGEABLE_ON_RESUME = {"epochs", "budget_minutes", "patience", "device", "amp", "compile", "workers"}


def _default(name: str):
    return str(getattr(TRAINING, name))


@dataclass(frozen=True)
class TrainParameters:
    data: str = common.data()
    out: str = option(None, flags=("--out",), type=click.Path(file_okay=False), required=True,
                      help="Run folder to create (or continue with --resume).")
    model_name: str = option(
        None, flags=("--architecture", "--model"), type=click.Choice(["auto", *list_models()]), show_default=_default("model"),
        help="Which network: conv; denoising (trained on corrupted inputs); photo (a residual encoder also trained to "
             "give crops, flips and colour changes of an image one code: for photographs); auto picks photo for "
             "continuous-tone images and conv for strokes, and says why. Elsewhere --model names a trained run "
             "folder; here the older spelling --model still works.")
    config: str = option(None, metavar="PRESET|FILE", help="A YAML file, or a preset in configs/ (conv, denoising, laptop).")
    epochs: int = option(None, type=click.IntRange(min=1),
                         show_default=f"enough for {MIN_STEPS:,} steps ({PHOTO_MIN_STEPS:,} for the photo model), "
                                      f"at least {DEFAULT_EPOCHS}",
                         help="Maximum epochs (early stopping may end sooner); a set length has no time budget.")
    budget_minutes: float = option(
        None, type=click.FloatRange(min=0, min_open=True), metavar="MINUTES",
        show_default=f"{PHOTO_CPU_MINUTES:g} for the photo model on a CPU, none otherwise",
        help="Training time budget: the default length is cut to the epochs that fit at the pace measured after each "
             "epoch (the learning rate still cools down at the end). Raise it for a longer, better run.")
    latent_dim: int = option(None, type=click.IntRange(min=1), show_default=f"{LATENT_DIM}; {PHOTO_LATENT_DIM} for the photo model",
                             help="Size of the latent space.")
    batch_size: int = option(None, type=click.IntRange(min=1),
                             show_default=f"{CPU_BATCH_SIZE} on a CPU; up to {GPU_BATCH_SIZE} a GPU",
                             help="Images per step (over all processes under torchrun).")
    lr: float = option(None, type=click.FloatRange(min=0, min_open=True),
                       show_default=f"{BASE_LR:g}; times sqrt(batch/{CPU_BATCH_SIZE}) for a GPU's default batch",
                       help="Peak learning rate.")
    beta: float = option(None, type=click.FloatRange(min=0), show_default=_default("beta"),
                         help="Weight of the KL term (beta-VAE).")
    likelihood: str = option(
        None, type=click.Choice(["auto", "bernoulli", "gaussian"]), show_default=_default("likelihood"),
        help="Pixel model: bernoulli (BCE) for strokes or shapes on a plain background, gaussian (learned scale) for "
             "continuous-tone images such as photos; auto picks by the share of mid-grey pixels and says why.")
    noise: str = option(None, metavar="SPEC", show_default=_default("noise"),
                        help="Corruption for --architecture denoising: gaussian:0.5, salt-pepper:0.2, mask:0.5 (pixels), "
                             "block:0.3 (patches) or a comma-separated mix.")
    image_size: tuple = option(None, metavar="N|HxW", callback=image_size, help="Resize every image to this size.")
    channels: str = option(None, type=click.Choice(["1", "3"]), help="Convert images to 1 (grey) or 3 (RGB) channels.")
    split: str = common.split()
    device: str = common.device(default=None)
    workers: int = option(None, type=click.IntRange(min=0),
                          show_default=f"0 on a CPU; up to {GPU_WORKERS} on a GPU machine for folders of image files",
                          help="Processes decoding image files in parallel (worth it for folders of JPEG/PNG).")
    seed: int = option(None, type=int, show_default=_default("seed"), help="Random seed (split, initialisation, batches).")
    resume: bool = option(False, is_flag=True, help="Continue the run in --out from its last completed epoch.")
    allow_other_data: bool = option(False, is_flag=True, help="With --resume: continue on images other than those the "
                                                              "run was trained on (refused otherwise).")
    set_options: tuple = option((), flags=("--set",), multiple=True, metavar="KEY=VALUE",
                                help="Any other configuration option; repeatable.")
    quiet: bool = common.quiet()

    def overrides(self) -> dict:
        """The configuration the options ask for: --set first, the named options over it."""
        from vaetools_pipelines.option_types import parse_set_option

        named = dict(model=self.model_name, epochs=self.epochs, budget_minutes=self.budget_minutes,
                     latent_dim=self.latent_dim, batch_size=self.batch_size, lr=self.lr, beta=self.beta,
                     likelihood=self.likelihood, noise=self.noise,
                     image_size=self.image_size, channels=int(self.channels) if self.channels else None,
                     device=self.device, workers=self.workers, seed=self.seed)
        return {**dict(parse_set_option(text) for text in self.set_options),
                **{k: v for k, v in named.items() if v is not None}}


def run(p: TrainParameters):
    """Train on ``p.data`` into the run folder ``p.out``. On ``resume`` the folder's own configuration
    is used, and only the training length and the hardware may be changed."""
    from vae_tools.config import load_config
    from vae_tools.data import load_dataset
    from vae_tools.errors import ConfigError
    from vae_tools.run_folder import read_run_config
    from vae_tools.training import train
    from vae_tools.training.trainer import TrainingInterrupted
    from vaetools_pipelines.interrupts import Interrupted

    overrides = p.overrides()
    if p.resume:
        run_config = read_run_config(p.out)
        stored = run_config.get("training")
        if not isinstance(stored, dict) or set(stored) - set(TrainConfig.__dataclass_fields__):
            raise ConfigError(f"{p.out}/config.json: its 'training' section is not a vaetools training configuration")
        asked = dict(overrides)
        if p.config:  # what the preset sets (a value other than the default) must match the run too
            defaults = TrainConfig().to_dict()
            asked = {k: v for k, v in load_config(p.config, overrides).to_dict().items()
                     if k in overrides or v != defaults[k]}
        changed = sorted(k for k, v in asked.items() if k not in CHANGEABLE_ON_RESUME and stored.get(k) != v)
        if changed:
            raise ConfigError(f"{p.out}: --resume continues the stored configuration; cannot change {', '.join(changed)}")
        cfg = TrainConfig(**{**stored, **overrides}).validate(f"{p.out}/config.json")
    else:
        cfg = load_config(p.config, overrides)
    dataset = load_dataset(p.data, image_size=cfg.image_size, channels=cfg.channels, split=p.split)
    if p.resume:
        trained_on = tuple(run_config.get("model", {}).get("params", {}).get("image_shape", ()))
        # A working size chosen for the images is applied to any images: compare the images' own size.
        native = (run_config.get("choices", {}).get("image_size") or {}).get("native")
        if native and not p.image_size and dataset.native_sizes != {tuple(native)}:
            sizes = ", ".join(f"{h}x{w}" for h, w in sorted(dataset.native_sizes)[:3])
            raise ConfigError(f"{p.out}: was trained on images of {native[0]}x{native[1]} but {p.data} holds {sizes}; "
                              "resume with the same data, or pass --image-size/--channels")
        if trained_on and trained_on != tuple(dataset.shape):
            raise ConfigError(f"{p.out}: was trained on images of {_shape_text(trained_on)} but {p.data} holds "
                              f"{_shape_text(dataset.shape)}; resume with the same data, or pass --image-size/--channels")
    try:
        return train(dataset, cfg, out_dir=p.out, resume=p.resume, progress=not p.quiet,
                     allow_other_data=p.allow_other_data)
    except TrainingInterrupted as exc:
        raise Interrupted(f"{exc}; continue with: {continuing_line(p)}") from None


def continuing_line(p: TrainParameters) -> str:
    """The command that goes on: --resume once an epoch is kept (the run folder holds the rest of the
    configuration); before that, the command as it was typed (there is nothing to resume)."""
    from vae_tools.run_folder import holds_epochs
    from vaetools_pipelines.interrupts import command_line

    if holds_epochs(Path(p.out)):
        return command_line("train", "--data", p.data, "--out", p.out, "--resume")
    context = click.get_current_context(silent=True)
    typed = context.find_root().meta.get("vaetools.argv") if context is not None else None
    if not typed:
        return command_line("train", "--data", p.data, "--out", p.out)
    return command_line(*(word for word in typed if word != "--resume"))


def _shape_text(shape) -> str:
    channels, height, width = shape
    return f"{height}x{width} with {channels} channel{'s' if channels != 1 else ''}"


def report(result, p: TrainParameters) -> list:
    from vae_tools.run_folder import read_run_config
    from vae_tools.training.trainer import worth_saying

    best = result.history[result.best_epoch - 1] if result.best_epoch else result.history[-1]
    loss = best["train_loss"] if math.isnan(best["val_loss"]) else best["val_loss"]
    lines = [f"trained {len(result.history)} epochs; best epoch {result.best_epoch} "
             f"(negative ELBO {loss:.2f} nats/image); run folder: {p.out}"]
    for name, choice in read_run_config(p.out).get("choices", {}).items():
        if worth_saying(choice):
            lines.append(f"{name.replace('_', ' ')}: {choice['why']}")
    return lines


def _holds_epochs(folder: Path) -> bool:
    from vae_tools.run_folder import holds_epochs

    return holds_epochs(folder)


def section(run: Path) -> Section:
    section = Section("Training")
    rows = csv_rows(run / STEP.output / "history.csv")
    if rows:
        monitored = "val_loss" if rows[0].get("val_loss") not in ("", "nan", None) else "train_loss"
        best = min(rows, key=lambda r: float(r[monitored]))
        which = "validation" if monitored == "val_loss" else "training"
        section.sentences.append(
            f"{len(rows)} epochs; the best {which} loss, {float(best[monitored]):.2f} nats per image, came at "
            f"epoch {best['epoch']}, and those weights are the model. The loss is the negative ELBO: how many "
            "nats the model needs to describe an image (lower is better).")
    section.figures.append((run / STEP.output / "loss_curves.png", "Loss per epoch on the training images and on the "
                            "held-out validation images, with the reconstruction and KL terms apart. A validation "
                            "curve that turns up while training keeps falling means overfitting.", "100%"))
    return section


STEP = Step(
    name="train", section=section, parameters=TrainParameters, run=run, report=report, output="model",
    supplies=lambda run, data: {"data": data}, resumes=_holds_epochs, distributed=True,
    help="""Train a VAE on SOURCE and save it as a run folder.

    The folder holds config.json, model.safetensors (best validation weights), the training state
    for --resume, and loss curves (history.csv, loss_curves.png).
    """)
