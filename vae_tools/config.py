"""Training configuration: defaults, YAML presets in ``configs/``, and command-line overrides."""

from __future__ import annotations

import dataclasses
import math
import importlib.resources
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import yaml

from vae_tools.errors import ConfigError
from vae_tools.models.defaults import ACTIVATION, HIDDEN_DIM, LIKELIHOOD_CHOICE, MODEL_CHOICE, NOISE, SIZE_LIMITS


DEFAULT_EPOCHS = 30


@dataclass
class TrainConfig:
    # model
    model: str = MODEL_CHOICE  # auto: photo for continuous-tone images, conv for strokes and documents
    latent_dim: Optional[int] = None  # None: the model's own (LATENT_DIM; PHOTO_LATENT_DIM for the photo model)
    widths: Optional[list] = None
    hidden_dim: int = HIDDEN_DIM
    likelihood: str = LIKELIHOOD_CHOICE  # auto: bernoulli or gaussian, from the images' histogram
    activation: str = ACTIVATION
    noise: str = NOISE
    # objective
    beta: float = 1.0
    kl_warmup_epochs: int = 0
    # optimisation
    epochs: Optional[int] = None  # None: enough for min_steps (at least DEFAULT_EPOCHS), ended by early stopping
    min_steps: Optional[int] = None  # None: the model's own (its ``min_steps``: 3,000, the photo model 10,000)
    # Minutes of training the default length is cut to fit (vae_tools/training/budget.py); None: the
    # model's own on a CPU (the photo model's PHOTO_CPU_MINUTES), none elsewhere. Set epochs, no budget.
    budget_minutes: Optional[float] = None
    # None: decided from the device (vae_tools/device_settings.py): 128 on a CPU, up to 1,024 a GPU;
    # the learning rate 2e-3 at 128 images a step, scaled with the square root of the batch.
    batch_size: Optional[int] = None
    lr: Optional[float] = None
    weight_decay: float = 0.0
    lr_schedule: str = "cosine"
    warmup_steps: int = 100
    val_fraction: float = 0.1
    patience: int = 8
    seed: int = 0
    # preprocessing
    image_size: Optional[list] = None
    channels: Optional[int] = None
    # hardware
    device: str = "auto"
    # bf16 autocast (fp16 on GPUs without bf16). None: decided from the device and the model
    # (vae_tools/training/precision.py): on for the conv model on a CPU that multiplies bf16 natively.
    amp: Optional[bool] = None
    # torch.compile the per-batch loss, with CUDA graphs on one GPU: 2.0x the images per second of the
    # uncompiled loop at batch 128 and 2.4x at batch 1024 on an H100, after about a minute of compiling.
    # None: on for a GPU run long enough to pay for it (vae_tools/device_settings.py).
    compile: Optional[bool] = None
    # DataLoader processes decoding image files; 0 decodes in the training process. None: some for
    # folders of image files on a GPU machine, none on a CPU (vae_tools/device_settings.py).
    workers: Optional[int] = None

    def validate(self, where: str = "configuration") -> "TrainConfig":
        self._check_types(where)
        limit = SIZE_LIMITS
        checks = [
            (self.latent_dim is None or 1 <= self.latent_dim <= limit["latent_dim"],
             f"latent_dim must be from 1 to {limit['latent_dim']}"),
            (1 <= self.hidden_dim <= limit["hidden_dim"], f"hidden_dim must be from 1 to {limit['hidden_dim']}"),
            (self.widths is None or (isinstance(self.widths, list) and 1 <= len(self.widths) <= limit["stages"]
                                     and all(_whole(w) and 1 <= w <= limit["width"] for w in self.widths)),
             f"widths must be a list of 1-{limit['stages']} whole numbers from 1 to {limit['width']}"),
            (self.epochs is None or self.epochs >= 1, "epochs must be at least 1"),
            (self.min_steps is None or self.min_steps >= 1, "min_steps must be at least 1"),
            (self.budget_minutes is None or (math.isfinite(self.budget_minutes) and self.budget_minutes > 0),
             "budget_minutes must be a positive number of minutes"),
            (self.batch_size is None or self.batch_size >= 1, "batch_size must be at least 1"),
            (self.lr is None or self.lr > 0, "lr must be positive"),
            (self.beta >= 0, "beta must be non-negative"),
            (self.kl_warmup_epochs >= 0, "kl_warmup_epochs must be non-negative"),
            (0 <= self.val_fraction < 1, "val_fraction must be in [0, 1)"),
            (self.patience >= 1, "patience must be at least 1"),
            (self.lr_schedule in ("cosine", "constant"), "lr_schedule must be cosine or constant"),
            (self.likelihood in ("auto", "bernoulli", "gaussian"), "likelihood must be auto, bernoulli or gaussian"),
            (self.device in ("auto", "cpu", "cuda", "mps") or self.device.startswith("cuda:"),
             "device must be auto, cpu, cuda or mps"),
            (self.channels in (None, 1, 3), "channels must be 1 or 3"),
            (self.workers is None or self.workers >= 0, "workers must be 0 or more"),
        ]
        for name in ("lr", "beta", "weight_decay", "val_fraction"):
            if getattr(self, name) is not None and not math.isfinite(getattr(self, name)):
                raise ConfigError(f"{where}: {name} must be a finite number, got {getattr(self, name)}")
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"{where}: {message}")
        if self.image_size is not None:
            size = self.image_size
            size = [size, size] if isinstance(size, int) else list(size)
            if len(size) != 2 or not all(_whole(v) and 4 <= v <= limit["image_side"] for v in size):
                raise ConfigError(f"{where}: image_size must be one size or [height, width], each from 4 to "
                                  f"{limit['image_side']}")
            self.image_size = size
        return self

    def _check_types(self, where: str) -> None:
        """Whole numbers are whole (not 1.9, not true), numbers are numbers, flags are true or false."""
        for spec in dataclasses.fields(self):
            value = getattr(self, spec.name)
            kind = str(spec.type)
            if value is None and kind.startswith("Optional"):
                continue
            if "int" in kind and "list" not in kind and not _whole(value):
                raise ConfigError(f"{where}: {spec.name} must be a whole number, got {value!r}")
            if kind in ("float", "Optional[float]") and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise ConfigError(f"{where}: {spec.name} must be a number, got {value!r}")
            if kind in ("bool", "Optional[bool]") and not isinstance(value, bool):
                raise ConfigError(f"{where}: {spec.name} must be true or false, got {value!r}")
            if kind == "str" and not isinstance(value, str):
                raise ConfigError(f"{where}: {spec.name} must be text, got {value!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


FIELD_TYPES = {f.name: f.type for f in dataclasses.fields(TrainConfig)}


def presets_dir() -> Path:
    """``configs/`` of a source checkout; a wheel install carries the same files as ``vae_tools.presets``."""
    checkout = Path(__file__).resolve().parents[1] / "configs"
    if checkout.is_dir():
        return checkout
    return Path(str(importlib.resources.files("vae_tools.presets")))


def list_presets() -> list[str]:
    return sorted(p.stem for p in presets_dir().glob("*.yaml"))


def resolve_config_path(name_or_path: str) -> Path:
    path = Path(name_or_path).expanduser()
    if path.exists():
        return path
    preset = presets_dir() / f"{name_or_path}.yaml"
    if preset.exists():
        return preset
    raise ConfigError(f"{name_or_path}: no such config file or preset (presets: {', '.join(list_presets())})")


def load_config(name_or_path: Optional[str] = None, overrides: Optional[dict] = None) -> TrainConfig:
    """Defaults, then the YAML file or preset, then ``overrides`` (None values are ignored)."""
    values: dict[str, Any] = {}
    if name_or_path:
        path = resolve_config_path(name_or_path)
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except (yaml.YAMLError, OSError) as exc:
            raise ConfigError(f"{path}: cannot read YAML ({str(exc).splitlines()[0]})") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping of option: value")
        values.update(_checked(loaded, str(path)))
    values.update(_checked({k: v for k, v in (overrides or {}).items() if v is not None}, "command line"))
    return TrainConfig(**values).validate(str(name_or_path or "command line"))


def _checked(values: dict, where: str) -> dict:
    out = {}
    for key, value in values.items():
        key = str(key).replace("-", "_")
        if key not in FIELD_TYPES:
            raise ConfigError(f"{where}: unknown option {key!r} (known: {', '.join(FIELD_TYPES)})")
        out[key] = _coerce(key, value, where)
    return out


def _to_int(value: Any) -> int:
    if isinstance(value, bool) or float(value) != int(float(value)):
        raise ValueError
    return int(float(value))


def _to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError
    return float(value)


def _to_bool(value: Any) -> bool:
    text = str(value).lower()
    if text in ("true", "yes", "1", "on"):
        return True
    if text in ("false", "no", "0", "off"):
        return False
    raise ValueError


def _to_size_list(value: Any):
    return [_to_int(v) for v in value] if isinstance(value, (list, tuple)) else _to_int(value)


_CONVERTERS = {
    "int": _to_int, "float": _to_float, "bool": _to_bool, "str": str,
    "Optional[list]": _to_size_list, "Optional[int]": _to_int, "Optional[float]": _to_float,
    "Optional[bool]": _to_bool,
}


def _coerce(key: str, value: Any, where: str) -> Any:
    if value is None:
        return None
    kind = FIELD_TYPES[key]
    try:
        return _CONVERTERS[kind](value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: option {key!r} has an invalid value {value!r} (expected {kind})") from None
