"""Where new latent codes come from: the prior N(0, I), or a Gaussian mixture fitted to the latents
of real images (pythae's GaussianMixtureSampler idea). The mixture follows the aggregate posterior,
so its codes land where the decoder was trained and its images come out sharper."""

from __future__ import annotations

import warnings

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture

from vae_tools.errors import DataError

COMPONENT_CANDIDATES = (1, 2, 5, 10, 20)
MAX_FIT_SAMPLES = 10_000  # the fit's cost grows with the samples; 10,000 pin a 16-d, 20-part mixture down well


def _generator(seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


class PriorSampler:
    """z ~ N(0, temperature² I): what the VAE's objective pulls its latents towards."""

    def __init__(self, latent_dim: int):
        self.latent_dim = int(latent_dim)

    def sample(self, n: int, *, temperature: float = 1.0, seed=0) -> torch.Tensor:
        z = _generator(seed).standard_normal((int(n), self.latent_dim)) * float(temperature)
        return torch.from_numpy(z.astype(np.float32))


class GaussianMixtureSampler:
    """A Gaussian mixture over encoder means. ``n_components="auto"`` keeps the count of
    COMPONENT_CANDIDATES with the lowest BIC on the latents themselves (no fixed count suits both 50
    images and 60,000)."""

    def __init__(self, *, n_components: int | str = "auto", max_samples: int = MAX_FIT_SAMPLES, random_state: int = 0):
        self.n_components = n_components
        self.max_samples = max_samples
        self.random_state = random_state

    def fit(self, latents) -> "GaussianMixtureSampler":
        latents = np.asarray(latents, dtype=np.float64)
        if latents.ndim != 2 or len(latents) < 2:
            raise DataError(f"a Gaussian mixture needs at least 2 latent codes, got {len(latents)}")
        if not np.isfinite(latents).all():
            raise DataError("the latent codes hold NaN or infinite values")
        rng = np.random.default_rng(self.random_state)
        if len(latents) > self.max_samples:
            latents = latents[rng.choice(len(latents), self.max_samples, replace=False)]
        # A component needs a few times more points than a full covariance has parameters.
        most = max(1, len(latents) // (2 * (latents.shape[1] + 1)))
        if self.n_components == "auto":
            candidates = [k for k in COMPONENT_CANDIDATES if k <= most] or [1]
        else:
            candidates = [min(int(self.n_components), len(latents))]
        self.bic_ = {}
        best = None
        for k in candidates:
            mixture = GaussianMixture(k, covariance_type="full", reg_covar=1e-4, n_init=1,
                                      random_state=self.random_state, max_iter=200)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                mixture.fit(latents)
            self.bic_[k] = float(mixture.bic(latents))
            if best is None or self.bic_[k] < self.bic_[best.n_components]:
                best = mixture
        self.n_components_ = best.n_components
        self.weights_ = best.weights_.astype(np.float64)
        self.means_ = best.means_.astype(np.float64)
        self.covariances_ = best.covariances_.astype(np.float64)
        self.n_samples_fit_ = len(latents)
        return self

    @property
    def latent_dim(self) -> int:
        return self.means_.shape[1]

    def sample(self, n: int, *, temperature: float = 1.0, seed=0) -> torch.Tensor:
        """Codes drawn from the mixture; ``temperature`` scales each component's spread."""
        rng = _generator(seed)
        components = rng.choice(len(self.weights_), size=int(n), p=self.weights_ / self.weights_.sum())
        cholesky = np.linalg.cholesky(self.covariances_)
        noise = rng.standard_normal((int(n), self.latent_dim))
        z = self.means_[components] + float(temperature) * np.einsum("nij,nj->ni", cholesky[components], noise)
        return torch.from_numpy(z.astype(np.float32))

    def log_density(self, z) -> np.ndarray:
        """log q(z) under the mixture, per code."""
        from scipy.stats import multivariate_normal

        z = np.asarray(z, dtype=np.float64)
        parts = [np.log(w) + multivariate_normal(m, c, allow_singular=True).logpdf(z)
                 for w, m, c in zip(self.weights_, self.means_, self.covariances_)]
        return np.logaddexp.reduce(np.atleast_2d(np.stack(parts, axis=-1)), axis=-1)

    def to_tensors(self) -> dict[str, torch.Tensor]:
        return {"gmm_weights": torch.from_numpy(self.weights_), "gmm_means": torch.from_numpy(self.means_),
                "gmm_covariances": torch.from_numpy(self.covariances_)}

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor], where: str) -> "GaussianMixtureSampler":
        try:
            weights, means, covariances = (tensors[k].double().numpy() for k in
                                           ("gmm_weights", "gmm_means", "gmm_covariances"))
        except KeyError as exc:
            raise DataError(f"{where}: no {exc.args[0]} tensor") from None
        k, d = means.shape if means.ndim == 2 else (0, 0)
        if weights.shape != (k,) or covariances.shape != (k, d, d) or k == 0:
            raise DataError(f"{where}: the mixture's tensors do not fit together")
        if not (np.isfinite(weights).all() and np.isfinite(means).all() and np.isfinite(covariances).all()) \
                or (weights < 0).any() or weights.sum() <= 0:
            raise DataError(f"{where}: the mixture holds invalid numbers")
        try:
            np.linalg.cholesky(covariances)
        except np.linalg.LinAlgError:
            raise DataError(f"{where}: a mixture covariance is not positive definite") from None
        sampler = cls(n_components=k)
        sampler.n_components_, sampler.weights_, sampler.means_, sampler.covariances_ = k, weights, means, covariances
        return sampler
