"""A scikit-learn / PyOD-style anomaly detector around a VAE."""

from __future__ import annotations

from typing import Optional

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.utils.validation import check_is_fitted

from vae_tools.anomaly.defaults import AUTO, SAMPLES, SCORE, SCORING_BATCH_SIZE
from vae_tools.anomaly.score_choice import candidates, check_computable, chosen, usable_scores
from vae_tools.anomaly.score_registry import get_score, list_scores
from vae_tools.anomaly.reference import AnomalyReference
from vae_tools.anomaly.scores import compute_scores, scores_from_parts
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
    ``X`` in ``fit`` is the reference: normal images every later image is compared with. With ``vae``
    it may also be an ``AnomalyReference`` (``load_reference`` reads the one ``vaetools train`` keeps
    of the training images), which needs no second pass over them.
    ``score="auto"`` picks one from the model and the reference images (score_choice.py): ``score_``
    is the one used, and ``choices_["score"]`` says why.
    Only what ``score`` needs is computed (vae_tools/anomaly/score_registry.py). ``score_parts_``
    holds it for the fitted images; ``fitted_`` the state the score fitted on them, by score name,
    and ``choices_`` its explanation ({"background_weight": {"value", "why"}} for ``adjusted``);
    ``background_weight_`` is the weight of the image's complexity in ``adjusted`` (None otherwise).
    """

    def __init__(self, score: str = SCORE, samples: int = SAMPLES, contamination: Optional[float] = None,
                 percentile: Optional[float] = None, threshold: Optional[float] = None, latent_dim: int = TRAINING.latent_dim,
                 epochs: Optional[int] = TRAINING.epochs, batch_size: Optional[int] = TRAINING.batch_size, lr: Optional[float] = TRAINING.lr,
                 likelihood: str = TRAINING.likelihood, device: str = TRAINING.device,
                 random_state: int = TRAINING.seed, verbose: bool = False, vae=None, scoring_batch_size: int = SCORING_BATCH_SIZE):
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
        if self.score != AUTO:
            get_score(self.score)  # an unknown name is refused before any training
        if self.vae is None and isinstance(X, AnomalyReference):
            raise DataError("an AnomalyReference holds no images to train on: give the trained model as `vae`")
        if self.vae is None:
            self.module_ = VAEEmbedder(latent_dim=self.latent_dim, epochs=self.epochs, batch_size=self.batch_size,
                                       lr=self.lr, likelihood=self.likelihood, device=self.device,
                                       random_state=self.random_state, verbose=self.verbose).fit(X).module_
        else:
            self.module_ = as_module(self.vae)
        names = candidates(self.score, self.module_)
        check_computable(self.module_, names)
        if isinstance(X, AnomalyReference):
            self.reference_, self.draw_seed_ = X, X.seed
        else:
            self.reference_, self.draw_seed_ = self._dataset(X), self.random_state
        parts, self.train_latents_, self.fitted_ = self._scores(self.reference_, names, {})
        self.score_, why = chosen(self.score, self.module_, parts)
        self.score_parts_ = parts
        score = get_score(self.score_)
        self.choices_ = {"score": why} if why else {}
        if score.explain:
            self.choices_[score.choice] = score.explain(self.fitted_[score.name])
        self.background_weight_ = self.fitted_["adjusted"]["value"] if "adjusted" in self.fitted_ else None
        self.decision_scores_ = parts[self.score_].to_numpy()
        self.threshold_info_ = choose_threshold(self.decision_scores_, self.contamination, self.percentile,
                                                self.threshold)
        self.threshold_ = self.threshold_info_.value
        self.labels_ = (self.decision_scores_ > self.threshold_).astype(int)
        return self

    def _dataset(self, X):
        channels, height, width = self.module_.image_shape
        return as_dataset(X, image_size=(height, width), channels=channels)

    def _scores(self, data, names, fitted):
        module = self.module_
        if isinstance(data, AnomalyReference):
            table, states = scores_from_parts(data.parts, data.latents, names, self.random_state, fitted)
            return table, data.latents, states
        return compute_scores(module, data, names, samples=self.samples, batch_size=self.scoring_batch_size,
                              device=next(module.parameters()).device, seed=self.draw_seed_,
                              progress=self.verbose, fitted=fitted)

    def score_parts(self, X, scores=None):
        """The ``scores`` (default: every registered one the model can compute) for ``X`` as a table,
        with the pass's columns they need; a score with a state uses the one fitted on the reference
        images (fitting it there first if ``fit`` did not need it)."""
        check_is_fitted(self, "threshold_")
        names = usable_scores(self.module_, list_scores()) if scores is None else list(scores)
        missing = [n for n in names if get_score(n).fit is not None and n not in self.fitted_]
        if missing:
            self.fitted_.update(self._scores(self.reference_, missing, self.fitted_)[2])
        return self._scores(self._dataset(X), names, self.fitted_)[0]

    def decision_function(self, X) -> np.ndarray:
        check_is_fitted(self, "threshold_")
        return self.score_parts(X, [self.score_])[self.score_].to_numpy()

    def predict(self, X) -> np.ndarray:
        return (self.decision_function(X) > self.threshold_).astype(int)

    def fit_predict(self, X, y=None) -> np.ndarray:
        return self.fit(X).labels_
