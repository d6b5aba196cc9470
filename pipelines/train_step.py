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
) -> TrainResult:
    """Train on ``data`` into the run folder ``out``. On ``resume`` the folder's own configuration is
    used, and only ``epochs`` and ``patience`` (and hardware options) may be changed."""
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    if resume:
        stored = read_run_config(out)["training"]
        changeable = {"epochs", "patience", "device", "amp"}
        changed = sorted(k for k, v in overrides.items() if k not in changeable and stored.get(k) != v)
        if changed or config:
            raise ConfigError(f"{out}: --resume continues the stored configuration; cannot change {', '.join(changed) or '--config'}")
        cfg = TrainConfig(**{**stored, **overrides}).validate(f"{out}/config.json")
    else:
        cfg = load_config(config, overrides)
    dataset = load_dataset(data, image_size=cfg.image_size, channels=cfg.channels, split=split)
    return train(dataset, cfg, out_dir=out, resume=resume, progress=progress)
