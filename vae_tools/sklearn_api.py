"""scikit-learn-style access: ``VAEEmbedder().fit(X).transform(X)`` and ``load_model(run_folder)``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from vae_tools.config import TrainConfig
from vae_tools.data import ImageDataset, load_dataset
from vae_tools.data.arrays import ArrayReader
from vae_tools.device import resolve_device
from vae_tools.embedding import embed, latent_matrix
from vae_tools.errors import DataError
from vae_tools.run_folder import load_run
from vae_tools.training import train


TRAINING = TrainConfig()  # the defaults every training parameter below takes


class VAEEmbedder(TransformerMixin, BaseEstimator):
    """Fit a VAE on images and map them to the means of their latent posteriors.

    ``X`` may be an array of images ((N, H, W), (N, H, W, C), (N, C, H, W), or (N, H*W) for square
    images, uint8 or floats in [0, 1] / [0, 255]) or anything :func:`load_dataset` accepts. Pixels on
    another scale need ``pixel_range=(0, high)`` (scikit-learn's digits: ``(0, 16)``).
    """

    def __init__(
        self,
        model: str = TRAINING.model,
        latent_dim: int = TRAINING.latent_dim,
        epochs: Optional[int] = TRAINING.epochs,
        batch_size: Optional[int] = TRAINING.batch_size,
        lr: Optional[float] = TRAINING.lr,
        beta: float = TRAINING.beta,
        likelihood: str = TRAINING.likelihood,
        activation: str = TRAINING.activation,
        noise: str = TRAINING.noise,
        widths: Optional[Sequence[int]] = TRAINING.widths,
        hidden_dim: int = TRAINING.hidden_dim,
        val_fraction: float = TRAINING.val_fraction,
        patience: int = TRAINING.patience,
        device: str = TRAINING.device,
        random_state: int = TRAINING.seed,
        verbose: bool = False,
        pixel_range: Optional[tuple] = None,
    ):
        self.model = model
        self.latent_dim = latent_dim
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.beta = beta
        self.likelihood = likelihood
        self.activation = activation
        self.noise = noise
        self.widths = widths
        self.hidden_dim = hidden_dim
        self.val_fraction = val_fraction
        self.patience = patience
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.pixel_range = pixel_range

    def _train_config(self) -> TrainConfig:
        return TrainConfig(
            model=self.model, latent_dim=self.latent_dim, epochs=self.epochs, batch_size=self.batch_size,
            lr=self.lr, beta=self.beta, likelihood=self.likelihood, activation=self.activation, noise=self.noise,
            widths=list(self.widths) if self.widths else None, hidden_dim=self.hidden_dim,
            val_fraction=self.val_fraction, patience=self.patience, device=self.device, seed=self.random_state,
        )

    def fit(self, X, y=None, out_dir: Optional[str | Path] = None) -> "VAEEmbedder":
        data = as_dataset(X, pixel_range=self.pixel_range)
        result = train(data, self._train_config(), out_dir=out_dir, progress=self.verbose)
        self.module_ = result.model
        self.history_ = result.history
        self.image_shape_ = tuple(self.module_.image_shape)
        self.n_features_out_ = self.module_.latent_dim
        return self

    def transform(self, X) -> np.ndarray:
        check_is_fitted(self, "module_")
        frame = embed(self.module_, self._dataset_for_model(X), device=resolve_device(self.device))
        return latent_matrix(frame)

    def score_samples(self, X, n_samples: int = 1) -> np.ndarray:
        """Negative ELBO per sample in nats (higher means the model explains the image worse)."""
        check_is_fitted(self, "module_")
        frame = embed(self.module_, self._dataset_for_model(X), device=resolve_device(self.device),
                      elbo=True, elbo_samples=n_samples)
        return frame["neg_elbo"].to_numpy()

    def reconstruct(self, X) -> np.ndarray:
        """Mean reconstructions as float32 (N, C, H, W) in [0, 1]."""
        check_is_fitted(self, "module_")
        device = resolve_device(self.device)
        module = self.module_.to(device)
        data = self._dataset_for_model(X)
        return np.concatenate([module.reconstruct(x.to(device)).cpu().numpy() for _, x in data.iter_batches(512)])

    def denoise(self, X, add_noise: Optional[str] = None, seed: int = 0) -> np.ndarray:
        """Denoised images as float32 (N, C, H, W) in [0, 1]: the decoder's mean image at the
        posterior mean. With ``add_noise`` (e.g. "gaussian:0.5") ``X`` is corrupted first, for
        trying the model on clean images."""
        check_is_fitted(self, "module_")
        from vae_tools.denoising import denoise

        _, denoised = denoise(self.module_, self._dataset_for_model(X), device=resolve_device(self.device),
                              add_noise=add_noise, seed=seed)
        return denoised

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        check_is_fitted(self, "module_")
        return np.array([f"mu_{j}" for j in range(self.n_features_out_)], dtype=object)

    def _dataset_for_model(self, X) -> ImageDataset:
        channels, height, width = self.image_shape_
        return as_dataset(X, image_size=(height, width), channels=channels, pixel_range=self.pixel_range)


def as_dataset(X, image_size=None, channels=None, pixel_range=None) -> ImageDataset:
    if isinstance(X, ImageDataset):
        if image_size is None or (X.shape[0] == channels and tuple(X.image_size) == tuple(image_size)):
            return X
        if X.shape[0] == channels:  # read as training read them: straight at the size where the source can
            return X.at_size(image_size)
        return ImageDataset(X.reader, X.ids, X.labels, channels, image_size, X.rows)
    if isinstance(X, (str, Path)):
        return load_dataset(X, image_size=image_size, channels=channels)
    array = np.asarray(X)
    if array.ndim < 2 or len(array) == 0:
        raise DataError(f"expected an array of images, got shape {array.shape}")
    reader = ArrayReader(array, "array", pixel_range)
    return ImageDataset(reader, [str(i) for i in range(len(array))], None, channels, image_size)


def load_model(path: str | Path, device: str = "auto") -> VAEEmbedder:
    """A fitted :class:`VAEEmbedder` from a run folder written by ``vaetools train``."""
    module, config = load_run(path, resolve_device(device))
    training = dict(config.get("training", {}))
    training["random_state"] = training.pop("seed", 0)
    params = {k: training[k] for k in VAEEmbedder._get_param_names() if k in training and k != "device"}
    embedder = VAEEmbedder(**params, device=device)
    embedder.module_ = module
    embedder.history_ = []
    embedder.image_shape_ = tuple(module.image_shape)
    embedder.n_features_out_ = module.latent_dim
    embedder.run_config_ = config
    return embedder
