"""Fitting a VAE to a dataset, with checkpoints, early stopping and loss curves."""

from vae_tools.training.trainer import TrainResult, TrainingInterrupted, build_model, train

__all__ = ["TrainResult", "TrainingInterrupted", "build_model", "train"]
