"""``vaetools train``: data source + configuration -> run folder."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from vae_tools.config import TrainConfig, load_config
from vae_tools.data import load_dataset
from vae_tools.errors import ConfigError
from vae_tools.run_folder import read_run_config
from vae_tools.training import TrainResult, train


def run_train(
    data: str,
    out: str | Path,
    config: Optional[str] = None,
    overrides: Optional[dict] = None,
    split: str = "all",
    resume: bool = False,
    progress: bool = True,
    allow_other_data: bool = False,
) -> TrainResult:
    """Train on ``data`` into the run folder ``out``. On ``resume`` the folder's own configuration is
    used, and only ``epochs`` and ``patience`` (and hardware options) may be changed."""
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    if resume:
        run_config = read_run_config(out)
        stored = run_config.get("training")
        if not isinstance(stored, dict) or set(stored) - set(TrainConfig.__dataclass_fields__):
            raise ConfigError(f"{out}/config.json: its 'training' section is not a vaetools training configuration")
        changeable = {"epochs", "patience", "device", "amp", "compile", "workers"}
        asked = dict(overrides)
        if config:  # what the preset sets (a value other than the default) must match the run too
            defaults = TrainConfig().to_dict()
            asked = {k: v for k, v in load_config(config, overrides).to_dict().items() if k in overrides or v != defaults[k]}
        changed = sorted(k for k, v in asked.items() if k not in changeable and stored.get(k) != v)
        if changed:
            raise ConfigError(f"{out}: --resume continues the stored configuration; cannot change {', '.join(changed)}")
        cfg = TrainConfig(**{**stored, **overrides}).validate(f"{out}/config.json")
    else:
        cfg = load_config(config, overrides)
    dataset = load_dataset(data, image_size=cfg.image_size, channels=cfg.channels, split=split)
    if resume:
        trained_on = tuple(run_config.get("model", {}).get("params", {}).get("image_shape", ()))
        if trained_on and trained_on != tuple(dataset.shape):
            raise ConfigError(f"{out}: was trained on images of {_shape_text(trained_on)} but {data} holds "
                              f"{_shape_text(dataset.shape)}; resume with the same data, or pass --image-size/--channels")
    return train(dataset, cfg, out_dir=out, resume=resume, progress=progress, allow_other_data=allow_other_data)


def _shape_text(shape) -> str:
    channels, height, width = shape
    return f"{height}x{width} with {channels} channel{'s' if channels != 1 else ''}"
