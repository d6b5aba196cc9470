"""A scikit-learn / PyOD-style anomaly detector around a VAE."""

from __future__ import annotations

from typing import Optional

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.utils.validation import check_is_fitted

from vae_tools.anomaly.defaults import SAMPLES, SCORE, SCORES
from vae_tools.anomaly.scores import all_scores
from vae_tools.anomaly.threshold import choose_threshold
from vae_tools.errors import DataError
from vae_tools.models.base import as_module
from vae_tools.sklearn_api import TRAINING, VAEEmbedder, as_dataset


class VAEAnomalyDetector(BaseEstimator):
    """Fit a VAE to (mostly) normal images; score new ones by how badly it explains them.

    ``decision_function`` is higher for more anomalous images (PyOD's convention); ``predict``
    returns 1 for anomalies and 0 for normal images. The threshold is set on the training scores:
    ``contamination`` (expected share of anomalies among them), ``percentile``, a fixed
    ``threshold``, or by default median + 3.5 robust standard deviations.

    ``vae``: a VAE trained already (a module, or a fitted ``VAEEmbedder``); ``fit`` then only scores
    ``X`` and sets the threshold, as scikit-learn's ``cv="prefit"`` does. Without it, ``fit`` trains one.
    ``score_parts_`` holds every score of the fitted images; ``background_weight_`` the weight of the
    image's complexity in the ``adjusted`` score, fitted on them.
    """

    def __init__(self, score: str = SCORE, samples: int = SAMPLES, contamination: Optional[float] = None,
                 percentile: Optional[float] = None, threshold: Optional[float] = None, latent_dim: int = TRAINING.latent_dim,
                 epochs: Optional[int] = TRAINING.epochs, batch_size: int = TRAINING.batch_size, lr: float = TRAINING.lr,
                 likelihood: str = TRAINING.likelihood, device: str = TRAINING.device,
                 random_state: int = TRAINING.seed, verbose: bool = False, vae=None, scoring_batch_size: int = 256):
        self.score = score
        self.samples = samples
        self.contamination = contamination
        self.percentile = percentile
        self.threshold = threshold
        self.latent_dim = latent_dim
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.likelihood = likelihood
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.vae = vae
        self.scoring_batch_size = scoring_batch_size

    def __sklearn_clone__(self) -> "VAEAnomalyDetector":
        """A copy with the same parameters that shares a given ``vae``: cloning a trained model the
        usual way would hand GridSearchCV and cross_val_score an untrained one."""
        params = {k: clone(v, safe=False) for k, v in self.get_params(deep=False).items() if k != "vae"}
        return type(self)(**params, vae=self.vae)

    def fit(self, X, y=None) -> "VAEAnomalyDetector":
        if self.score not in SCORES:
            raise DataError(f"unknown score {self.score!r}: use one of {', '.join(SCORES)}")
        if self.vae is None:
            self.module_ = VAEEmbedder(latent_dim=self.latent_dim, epochs=self.epochs, batch_size=self.batch_size,
                                       lr=self.lr, likelihood=self.likelihood, device=self.device,
                                       random_state=self.random_state, verbose=self.verbose).fit(X).module_
        else:
            self.module_ = as_module(self.vae)
        parts, self.train_latents_ = self._parts(self._dataset(X), reference=None, weight=None)
        self.score_parts_ = parts
        self.background_weight_ = parts.attrs["background_weight"]
        self.background_weight_why_ = parts.attrs["background_weight_why"]
        self.decision_scores_ = parts[self.score].to_numpy()
        self.threshold_info_ = choose_threshold(self.decision_scores_, self.contamination, self.percentile,
                                                self.threshold)
        self.threshold_ = self.threshold_info_.value
        self.labels_ = (self.decision_scores_ > self.threshold_).astype(int)
        return self

    def _dataset(self, X):
        channels, height, width = self.module_.image_shape
        return as_dataset(X, image_size=(height, width), channels=channels)

    def _parts(self, data, reference, weight):
        module = self.module_
        return all_scores(module, data, samples=self.samples, batch_size=self.scoring_batch_size,
                          device=next(module.parameters()).device, seed=self.random_state, progress=self.verbose,
                          reference_latents=reference, background_weight=weight)

    def score_parts(self, X):
        """Every score for ``X`` as a table (adjusted, complexity, iwae, elbo, recon, kl, latent,
        background), the reference-based ones against the fitted images."""
        check_is_fitted(self, "threshold_")
        return self._parts(self._dataset(X), reference=self.train_latents_, weight=self.background_weight_)[0]

    def decision_function(self, X) -> np.ndarray:
        return self.score_parts(X)[self.score].to_numpy()

    def predict(self, X) -> np.ndarray:
        return (self.decision_function(X) > self.threshold_).astype(int)

    def fit_predict(self, X, y=None) -> np.ndarray:
        return self.fit(X).labels_
