"""What the neighbour graph is built on: the VAE's latents, the pixels, or both, reduced by UMAP.

Measured on three data sets (bench/generalise.py) label spreading works far better on a 10-d UMAP map
of the features (min_dist 0, the N2D recipe) than on the features themselves, and which features win
depends on the data: on 8x8 digits the pixels beat a VAE trained on 1,800 images, on Kuzushiji-MNIST
latents plus pixels beat either alone. So the feature set is chosen per data set by cross-validation
on the labelled samples (see ``choose_features``), never fixed."""

from __future__ import annotations

from typing import Optional

import numpy as np
from sklearn.decomposition import PCA

from vae_tools.errors import DataError
from vae_tools.latent.defaults import ENSEMBLE_LIMIT, ENSEMBLE_MAPS, FEATURE_SETS, UMAP_BACKEND

PIXEL_COMPONENTS = 50
GRAPH_COMPONENTS = 10
# UMAP runs single-threaded when seeded: about 2.5 minutes for 70,000 points on this 2-core CPU, and
# it grows faster than linearly; past this many points the graph is built on the features directly.
UMAP_LIMIT = 200_000


def effective_reduce(reduce: str, n_samples: int) -> str:
    """``auto``: ``umap`` up to UMAP_LIMIT samples, ``none`` beyond."""
    if reduce == "auto":
        return "umap" if n_samples <= UMAP_LIMIT else "none"
    return reduce


def effective_maps(n_maps, n_samples: int) -> int:
    """``auto``: ENSEMBLE_MAPS maps up to ENSEMBLE_LIMIT samples, one beyond; a count stays as given."""
    if n_maps == "auto":
        return ENSEMBLE_MAPS if n_samples <= ENSEMBLE_LIMIT else 1
    if isinstance(n_maps, bool) or not isinstance(n_maps, (int, np.integer)) or n_maps < 1:
        raise DataError(f"the number of maps must be auto or a whole number of at least 1, got {n_maps!r}")
    return int(n_maps)


def pixel_components(images: np.ndarray, n_components: int = PIXEL_COMPONENTS, seed: int = 0) -> np.ndarray:
    """The leading principal components of the flattened images, (n, <= n_components)."""
    flat = np.asarray(images, dtype=np.float32).reshape(len(images), -1)
    n_components = min(n_components, flat.shape[1], len(flat) - 1)
    if n_components < 1:
        raise DataError(f"{len(flat)} images are too few for principal components")
    return PCA(n_components, random_state=seed).fit_transform(flat).astype(np.float32)


def _standardised(block: np.ndarray) -> np.ndarray:
    # One scale per block (not per column) keeps the block's own geometry; both blocks then weigh alike.
    return block / max(float(block.std()), 1e-12)


def feature_matrix(name: str, latents: Optional[np.ndarray], pixels: Optional[np.ndarray]) -> np.ndarray:
    """The features called ``name`` (one of FEATURE_SETS but auto) from the latents and pixel components."""
    if name == "latents":
        return np.asarray(latents, dtype=np.float32)
    if pixels is None:
        raise DataError(f"feature set {name!r} needs the images, not only their latents")
    if name == "pixels":
        return pixels
    if name == "latents+pixels":
        return np.hstack([_standardised(latents), _standardised(pixels)]).astype(np.float32)
    raise DataError(f"unknown feature set {name!r}: use one of {', '.join(FEATURE_SETS)}")


def candidate_names(requested: str, have_pixels: bool) -> list[str]:
    if requested not in FEATURE_SETS:
        raise DataError(f"unknown feature set {requested!r}: use one of {', '.join(FEATURE_SETS)}")
    if requested != "auto":
        return [requested]
    return list(FEATURE_SETS[1:]) if have_pixels else ["latents"]


def _already_small(features: np.ndarray, n_components: int) -> bool:
    """No map is made of features with no more columns than the map, or too few rows for one."""
    return features.shape[1] <= n_components or len(features) <= n_components + 2


def graph_space(features: np.ndarray, n_components: int = GRAPH_COMPONENTS, seed: int = 0,
                backend: str = UMAP_BACKEND) -> np.ndarray:
    """The UMAP map (min_dist 0) the neighbour graph is built on; features already that small pass through."""
    from vae_tools.latent.projection import umap_embedding

    features = np.asarray(features, dtype=np.float32)
    if _already_small(features, n_components):
        return features
    return umap_embedding(features, n_components, seed, backend=backend)


def graph_spaces(features: np.ndarray, n_components: int = GRAPH_COMPONENTS, seed: int = 0,
                 backend: str = UMAP_BACKEND, n_maps: int = 1, first: Optional[np.ndarray] = None) -> np.ndarray:
    """``n_maps`` UMAP maps of the features (seeds ``seed``, ``seed + 1``, ...) stacked as
    (n_maps, n_samples, n_components); features already that small give one map, themselves.
    ``first``: the map of seed ``seed`` when the caller already has it."""
    features = np.asarray(features, dtype=np.float32)
    if _already_small(features, n_components):
        return features[None]
    maps = [first if first is not None else graph_space(features, n_components, seed, backend)]
    maps += [graph_space(features, n_components, seed + i, backend) for i in range(1, n_maps)]
    return np.stack(maps)
