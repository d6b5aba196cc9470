"""The reducer a neighbour graph or a clustering is built on: the features mapped to a few dimensions
first. Measured on three data sets (bench/generalise.py), label spreading and k-means work far better
on a 10-d UMAP map (min_dist 0, the N2D recipe) than on the features themselves.

``reduce`` is a name (``REDUCERS``: umap, pca, none; ``auto`` picks umap up to UMAP_LIMIT samples),
an object with ``fit_transform`` (scikit-learn's habit: PCA, cuML's UMAP, your own; cloned with each
map's ``random_state`` when it has one), or a callable ``f(features, seed) -> array``. Light (numpy
only), so that the command line's help lists the names."""

from __future__ import annotations

from typing import Optional

import numpy as np

from vae_tools.errors import DataError
from vae_tools.latent.defaults import UMAP_BACKEND

# UMAP runs single-threaded when seeded: about 25 s for a 10-d map of 70,000 points on a 2-core CPU
# (GRAPH_MAP_EPOCHS), and it grows faster than linearly; past this many points ``auto`` builds on the
# features directly.
UMAP_LIMIT = 200_000
# A map for a graph or for k-means needs its neighbourhoods, not a finished picture: with 100 layout
# epochs instead of umap-learn's 200 (500 under 10,000 points) label spreading was as accurate on MNIST
# 70k (98.01% against 97.94%), Kuzushiji-MNIST pixels (87.5% against 87.2%, 3 seeds) and digits (97.3%
# against 97.0%), and k-means as accurate on MNIST latents (0.965 both) and Kuzushiji-MNIST pixels
# (0.49 against 0.48), in a half to a seventh of the time.
GRAPH_MAP_EPOCHS = 100


class UMAPReducer:
    """UMAP with min_dist 0 (points of a kind packed tight), from umap-learn or RAPIDS cuML."""

    def __init__(self, n_components: int = 10, backend: str = UMAP_BACKEND, random_state: int = 0):
        self.n_components = n_components
        self.backend = backend
        self.random_state = random_state

    def fit_transform(self, X, y=None) -> np.ndarray:
        from vae_tools.latent.projection import umap_embedding

        return umap_embedding(X, self.n_components, self.random_state, backend=self.backend, n_epochs=GRAPH_MAP_EPOCHS)


class PCAReducer:
    def __init__(self, n_components: int = 10, random_state: int = 0):
        self.n_components = n_components
        self.random_state = random_state

    def fit_transform(self, X, y=None) -> np.ndarray:
        from sklearn.decomposition import PCA

        return PCA(self.n_components, random_state=self.random_state).fit_transform(X).astype(np.float32)


class _Callable:
    def __init__(self, function, seed: int):
        self.function, self.seed = function, seed

    def fit_transform(self, X, y=None):
        return self.function(X, self.seed)


# name -> (n_components, backend, seed) -> a reducer, or None for the features themselves
REDUCERS = {
    "umap": lambda n_components, backend, seed: UMAPReducer(n_components, backend, seed),
    "pca": lambda n_components, backend, seed: PCAReducer(n_components, seed),
    "none": lambda n_components, backend, seed: None,
}
REDUCER_NAMES = ("auto", *REDUCERS)


def check_reduce(reduce) -> None:
    if isinstance(reduce, str):
        if reduce not in REDUCER_NAMES:
            raise DataError(f"unknown reduction {reduce!r}: use one of {', '.join(REDUCER_NAMES)}, or give an "
                            "object with fit_transform")
    elif not (hasattr(reduce, "fit_transform") or callable(reduce)):
        raise DataError(f"`reduce` must be a name, an object with fit_transform or a callable, got {type(reduce).__name__}")


def effective_reduce(reduce, n_samples: int):
    """``auto``: ``umap`` up to UMAP_LIMIT samples, ``none`` beyond; anything else as given."""
    if isinstance(reduce, str) and reduce == "auto":
        return "umap" if n_samples <= UMAP_LIMIT else "none"
    return reduce


def reducer_for(reduce, n_samples: int, n_components: int, seed: int, backend: str = UMAP_BACKEND):
    """The reducer of one map (seeded ``seed``), or None where the features are used as they are."""
    check_reduce(reduce)
    reduce = effective_reduce(reduce, n_samples)
    if isinstance(reduce, str):
        return REDUCERS[reduce](n_components, backend, seed)
    if hasattr(reduce, "fit_transform"):
        if hasattr(reduce, "get_params") and "random_state" in reduce.get_params():
            from sklearn.base import clone

            return clone(reduce).set_params(random_state=seed)
        return reduce
    return _Callable(reduce, seed)


def reduces(reduce, n_samples: int) -> bool:
    """Whether ``reduce`` maps the features at all (anything but none)."""
    check_reduce(reduce)
    return not (isinstance(reduce, str) and effective_reduce(reduce, n_samples) == "none")


def _already_small(features: np.ndarray, n_components: int) -> bool:
    """No map is made of features with no more columns than the map, or too few rows for one."""
    return features.shape[1] <= n_components or len(features) <= n_components + 2


def reduced(features: np.ndarray, reduce, n_components: int, seed: int = 0, backend: str = UMAP_BACKEND) -> np.ndarray:
    """One map of the features; features already that small (or ``none``) pass through."""
    features = np.asarray(features, dtype=np.float32)
    reducer = reducer_for(reduce, len(features), n_components, seed, backend)
    if reducer is None or _already_small(features, n_components):
        return features
    return np.asarray(reducer.fit_transform(features), dtype=np.float32)


def reduced_maps(features: np.ndarray, reduce, n_components: int, seed: int = 0, backend: str = UMAP_BACKEND,
                 n_maps: int = 1, first: Optional[np.ndarray] = None) -> np.ndarray:
    """``n_maps`` maps of the features (seeds ``seed``, ``seed + 1``, ...) stacked as (n_maps,
    n_samples, n_components); features not reduced, or already that small, give one map: themselves.
    ``first``: the map of seed ``seed`` when the caller already has it."""
    features = np.asarray(features, dtype=np.float32)
    if not reduces(reduce, len(features)) or _already_small(features, n_components):
        return features[None]
    maps = [first if first is not None else reduced(features, reduce, n_components, seed, backend)]
    maps += [reduced(features, reduce, n_components, seed + i, backend) for i in range(1, n_maps)]
    return np.stack(maps)
