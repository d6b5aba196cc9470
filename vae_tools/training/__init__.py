"""Fitting a VAE to a dataset, with checkpoints, early stopping and loss curves."""

from vae_tools.lazy import lazy_exports

_EXPORTS = {name: "vae_tools.training.trainer" for name in ("TrainResult", "TrainingInterrupted", "build_model", "train")}
__getattr__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
