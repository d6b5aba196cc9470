"""A run folder on disk: ``config.json`` + ``model.safetensors`` (+ training state). No pickle anywhere."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from safetensors import SafetensorError
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from vae_tools import __version__
from vae_tools.atomic import atomic_path, finite_json
from vae_tools.errors import RunFolderError
from vae_tools.models import get_model
from vae_tools.models.registry import get_model_class
from vae_tools.models.defaults import SIZE_LIMITS

FORMAT = "vaetools-run"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
STATE_FILE = "training_state.json"
STATE_TENSORS_FILE = "training_state.safetensors"
HISTORY_FILE = "history.csv"
CURVES_FILE = "loss_curves.png"
SUMMARY_FILE = "latent_summary.safetensors"
REFERENCE_FILE = "anomaly_reference.safetensors"  # written by vae_tools/anomaly/reference.py
# The run folder's manifest: every file training writes into it. Nothing else writes these names there.
RUN_FILES = (CONFIG_FILE, WEIGHTS_FILE, STATE_FILE, STATE_TENSORS_FILE, HISTORY_FILE, CURVES_FILE, SUMMARY_FILE,
             REFERENCE_FILE)


def is_run_folder(path: Path) -> bool:
    """Whether ``path`` holds a run that training started: its configuration and weights or state."""
    path = Path(path)
    try:
        return (path / CONFIG_FILE).is_file() and ((path / WEIGHTS_FILE).is_file() or (path / STATE_FILE).is_file()
                                                  or (path / STATE_TENSORS_FILE).is_file())
    except OSError:  # a name too long to look up holds nothing
        return False


def started_here(path: Path) -> bool:
    """Whether ``path/config.json`` is a vaetools run's own (a run that may not have finished an epoch)."""
    config = Path(path) / CONFIG_FILE
    try:
        return (config.is_file() and not config.is_symlink() and config.stat().st_size <= MAX_JSON_BYTES
                and json.loads(config.read_text(encoding="utf-8")).get("format") == FORMAT)
    except (OSError, ValueError, AttributeError):
        return False


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


def _write_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(path), metadata=metadata)


def read_run_config(run_dir: str | Path) -> dict:
    run_dir = Path(run_dir)
    path = run_dir / CONFIG_FILE
    if not run_dir.is_dir():
        raise RunFolderError(f"{run_dir}: no such run folder")
    if not path.exists():
        nearby = sorted(p.parent for p in run_dir.glob(f"*/{CONFIG_FILE}")) + sorted(
            p.parent for p in run_dir.glob(f"*/*/{CONFIG_FILE}"))
        hint = f"; a model was found in {nearby[0]}" if nearby else ""
        raise RunFolderError(f"{run_dir}: not a vaetools run folder (no {CONFIG_FILE}){hint}")
    config = read_small_json(path)
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise RunFolderError(f"{path}: not a vaetools run configuration")
    version = config.get("format_version")
    if version != FORMAT_VERSION:
        raise RunFolderError(
            f"{path}: written by vaetools {config.get('vaetools_version', '?')} in run format {version}; "
            f"this vaetools {__version__} reads format {FORMAT_VERSION}"
        )
    return config


MAX_JSON_BYTES = 1 << 20


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def read_small_json(path: Path) -> Any:
    """A JSON file of at most MAX_JSON_BYTES from a regular file (never a device or an endless pipe),
    without NaN or Infinity."""
    if not path.is_file():
        raise RunFolderError(f"{path}: not a regular file")
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_JSON_BYTES + 1)
        if len(raw) > MAX_JSON_BYTES:
            raise RunFolderError(f"{path}: larger than {MAX_JSON_BYTES} bytes; not a vaetools file")
        return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError, OSError) as exc:
        raise RunFolderError(f"{path}: unreadable ({exc})") from None


def _whole(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def check_model_params(params: Any, where: str) -> None:
    """One line naming the first field of a stored model description that is of the wrong type or size."""
    if not isinstance(params, dict):
        raise RunFolderError(f"{where}: model.params must be a mapping")
    shape = params.get("image_shape")
    checks = [
        ("image_shape", isinstance(shape, list) and len(shape) == 3 and _whole(shape[0], 1, 3)
         and all(_whole(v, 1, SIZE_LIMITS["image_side"]) for v in shape[1:]),
         f"[channels 1-3, height, width each 1-{SIZE_LIMITS['image_side']}]"),
        ("latent_dim", _whole(params.get("latent_dim"), 1, SIZE_LIMITS["latent_dim"]),
         f"a whole number from 1 to {SIZE_LIMITS['latent_dim']}"),
        ("hidden_dim", _whole(params.get("hidden_dim", 1), 1, SIZE_LIMITS["hidden_dim"]),
         f"a whole number from 1 to {SIZE_LIMITS['hidden_dim']}"),
        ("widths", params.get("widths") is None or (isinstance(params["widths"], list)
                                                    and 1 <= len(params["widths"]) <= SIZE_LIMITS["stages"]
                                                    and all(_whole(w, 1, SIZE_LIMITS["width"]) for w in params["widths"])),
         f"a list of 1-{SIZE_LIMITS['stages']} whole numbers up to {SIZE_LIMITS['width']}"),
    ]
    for field, ok, expected in checks:
        if not ok:
            raise RunFolderError(f"{where}: model.params.{field} is {params.get(field)!r}; expected {expected}")
    for field in ("likelihood", "activation", "noise"):
        if field in params and not isinstance(params[field], str):
            raise RunFolderError(f"{where}: model.params.{field} must be a string")


def model_from_config(config: dict, where: str) -> nn.Module:
    model = config.get("model")
    if not isinstance(model, dict) or not isinstance(model.get("name"), str):
        raise RunFolderError(f"{where}: model description is incomplete (needs model.name and model.params)")
    check_model_params(model.get("params"), where)
    try:
        # A parameter added after a folder was saved takes the value its model was trained with.
        saved_before = getattr(get_model_class(model["name"]), "saved_before", {})
        return get_model(model["name"], **{**saved_before, **model["params"]})
    except (KeyError, TypeError, ValueError) as exc:
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


def model_folder(run_dir: str | Path) -> Path:
    """The folder holding the model: ``run_dir`` itself, or the ``model/`` inside a pipeline's run
    folder (``vaetools run`` and ``vaetools demo`` write one)."""
    run_dir = Path(run_dir)
    inner = run_dir / "model"
    if not (run_dir / CONFIG_FILE).exists() and (inner / CONFIG_FILE).exists():
        return inner
    return run_dir


def load_run(run_dir: str | Path, device: torch.device | str = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild the model of a run folder with its best weights; returns (model in eval mode, config)."""
    run_dir = model_folder(run_dir)
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


def save_checkpoint(run_dir: Path, model: nn.Module, optimizer, progress: dict, best: bool) -> None:
    """One epoch's files. training_state.safetensors is the one that commits the epoch: it holds the
    weights, the optimizer and the progress (in its metadata), so a single rename makes the epoch
    kept, and an interrupt or a kill at any moment leaves either the previous epoch or this one,
    whole. The best weights go first (a kill after them costs nothing: the epoch is trained again,
    the same way); training_state.json and history.csv are readable copies written after."""
    tensors, plain = optimizer_to_files(optimizer)
    tensors.update({f"model.{k}": v for k, v in model.state_dict().items()})
    tensors["rng.torch"] = torch.get_rng_state()
    device = next(model.parameters()).device
    if device.type == "cuda":  # the reparameterisation noise of a GPU run comes from the GPU's generator
        tensors["rng.cuda"] = torch.cuda.get_rng_state(device)
    state = json.dumps(finite_json({**progress, "optimizer": plain}), indent=2, allow_nan=False)
    if best:
        with atomic_path(run_dir / WEIGHTS_FILE) as tmp:
            _write_tensors(tmp, model.state_dict(), {"format": FORMAT})
    with atomic_path(run_dir / STATE_TENSORS_FILE) as tmp:
        _write_tensors(tmp, tensors, {"format": FORMAT, "progress": state})
    with atomic_path(run_dir / STATE_FILE) as tmp:
        tmp.write_text(state)
    with atomic_path(run_dir / HISTORY_FILE) as tmp:
        pd.DataFrame(progress["history"]).to_csv(tmp, index=False)


def holds_epochs(run_dir: Path) -> bool:
    """Whether ``run_dir`` keeps a finished epoch to resume from."""
    return (Path(run_dir) / STATE_TENSORS_FILE).is_file()


def check_training_progress(progress: Any, where: Path) -> None:
    """Types of training_state.json checked before any training starts, so a damaged file costs no epoch."""
    fields = {"epoch": int, "best_epoch": int, "bad_epochs": int, "best_val": (int, float), "history": list,
              "optimizer": dict}
    if not isinstance(progress, dict):
        raise RunFolderError(f"{where}: expected a mapping")
    for field, kind in fields.items():
        value = progress.get(field)
        if not isinstance(value, kind) or isinstance(value, bool) or (isinstance(value, int) and not
                                                                      isinstance(value, float) and value < 0):
            raise RunFolderError(f"{where}: field {field!r} is {value!r}; the training state is damaged")
    if not all(isinstance(row, dict) for row in progress["history"]):
        raise RunFolderError(f"{where}: field 'history' must be a list of rows; the training state is damaged")


def load_training_state(run_dir: Path, model: nn.Module, optimizer) -> dict:
    json_path, tensor_path = run_dir / STATE_FILE, run_dir / STATE_TENSORS_FILE
    if not tensor_path.exists():
        raise RunFolderError(f"{run_dir}: no training state to resume from (no completed epoch)")
    try:
        with safe_open(str(tensor_path), framework="pt") as handle:
            stored = (handle.metadata() or {}).get("progress")
        # The tensors' own copy is the epoch they hold; training_state.json may be an epoch behind.
        progress = json.loads(stored, parse_constant=_reject_constant) if stored else read_small_json(json_path)
    except (SafetensorError, OSError, ValueError) as exc:
        raise RunFolderError(f"{run_dir}: training state is damaged ({exc})") from None
    check_training_progress(progress, tensor_path if stored else json_path)
    try:
        tensors = load_file(str(tensor_path))
        model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        optimizer.load_state_dict(optimizer_from_files(tensors, progress.pop("optimizer")))
        torch.set_rng_state(tensors["rng.torch"])
        device = next(model.parameters()).device
        if "rng.cuda" in tensors and device.type == "cuda":
            torch.cuda.set_rng_state(tensors["rng.cuda"], device)
    except (json.JSONDecodeError, SafetensorError, OSError, KeyError, ValueError, RuntimeError) as exc:
        raise RunFolderError(f"{run_dir}: training state is damaged ({exc})") from None
    return progress
