"""A run folder on disk: ``config.json`` + ``model.safetensors`` (+ training state). No pickle anywhere."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from vae_tools import __version__
from vae_tools.atomic import atomic_path, write_json
from vae_tools.errors import RunFolderError
from vae_tools.models import get_model

FORMAT = "vaetools-run"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
STATE_FILE = "training_state.json"
STATE_TENSORS_FILE = "training_state.safetensors"


def run_config(model: nn.Module, train_config: dict, data: dict) -> dict:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "vaetools_version": __version__,
        "model": {"name": model.registry_name, "params": model.config()},
        "preprocessing": {"channels": model.image_shape[0], "image_size": list(model.image_shape[1:])},
        "training": train_config,
        "data": data,
    }


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    with atomic_path(path) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata)


def save_weights(run_dir: Path, model: nn.Module) -> None:
    save_tensors(Path(run_dir) / WEIGHTS_FILE, model.state_dict(), {"format": FORMAT})


def read_run_config(run_dir: str | Path) -> dict:
    run_dir = Path(run_dir)
    path = run_dir / CONFIG_FILE
    if not run_dir.is_dir():
        raise RunFolderError(f"{run_dir}: no such run folder")
    if not path.exists():
        raise RunFolderError(f"{run_dir}: not a vaetools run folder (no {CONFIG_FILE})")
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, OSError) as exc:
        raise RunFolderError(f"{path}: unreadable ({exc})") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise RunFolderError(f"{path}: not a vaetools run configuration")
    version = config.get("format_version")
    if version != FORMAT_VERSION:
        raise RunFolderError(
            f"{path}: written by vaetools {config.get('vaetools_version', '?')} in run format {version}; "
            f"this vaetools {__version__} reads format {FORMAT_VERSION}"
        )
    return config


def model_from_config(config: dict, where: str) -> nn.Module:
    try:
        return get_model(config["model"]["name"], **config["model"]["params"])
    except (KeyError, TypeError) as exc:
        raise RunFolderError(f"{where}: model description is incomplete or invalid ({exc})") from None


def load_state_into(model: nn.Module, path: Path) -> None:
    if not path.exists():
        raise RunFolderError(f"{path.parent}: no {path.name} (was training interrupted before the first epoch?)")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise RunFolderError(f"{path}: unreadable weights ({exc})") from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[1].strip() if len(str(exc).splitlines()) > 1 else str(exc)
        raise RunFolderError(f"{path}: weights do not match config.json ({first})") from None


def load_run(run_dir: str | Path, device: torch.device | str = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild the model of a run folder with its best weights; returns (model in eval mode, config)."""
    run_dir = Path(run_dir)
    config = read_run_config(run_dir)
    model = model_from_config(config, str(run_dir / CONFIG_FILE))
    load_state_into(model, run_dir / WEIGHTS_FILE)
    return model.to(device).eval(), config


def optimizer_to_files(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimizer state into tensors (for safetensors) and plain values (for JSON)."""
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, entry in state["state"].items():
        for key, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"optimizer.{index}.{key}"] = value
            else:
                scalars[f"{index}.{key}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def optimizer_from_files(tensors: dict[str, torch.Tensor], plain: dict[str, Any]) -> dict:
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        if name.startswith("optimizer."):
            _, index, key = name.split(".", 2)
            state.setdefault(int(index), {})[key] = value
    for name, value in plain["scalars"].items():
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = value
    return {"state": state, "param_groups": plain["param_groups"]}


def save_training_state(run_dir: Path, model: nn.Module, optimizer, progress: dict) -> None:
    tensors, plain = optimizer_to_files(optimizer)
    tensors.update({f"model.{k}": v for k, v in model.state_dict().items()})
    tensors["rng.torch"] = torch.get_rng_state()
    save_tensors(run_dir / STATE_TENSORS_FILE, tensors)
    write_json(run_dir / STATE_FILE, {**progress, "optimizer": plain})


def load_training_state(run_dir: Path, model: nn.Module, optimizer) -> dict:
    json_path, tensor_path = run_dir / STATE_FILE, run_dir / STATE_TENSORS_FILE
    if not json_path.exists() or not tensor_path.exists():
        raise RunFolderError(f"{run_dir}: no training state to resume from (no completed epoch)")
    try:
        progress = json.loads(json_path.read_text())
        tensors = load_file(str(tensor_path))
        model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        optimizer.load_state_dict(optimizer_from_files(tensors, progress.pop("optimizer")))
        torch.set_rng_state(tensors["rng.torch"])
    except (json.JSONDecodeError, SafetensorError, OSError, KeyError, ValueError, RuntimeError) as exc:
        raise RunFolderError(f"{run_dir}: training state is damaged ({exc})") from None
    return progress
