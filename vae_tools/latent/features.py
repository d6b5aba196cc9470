"""What the neighbour graph is built on: the VAE's latents, the pixels, or both (then reduced:
vae_tools/latent/reducers.py).

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
from vae_tools.latent.defaults import ENSEMBLE_LIMIT, ENSEMBLE_MAPS, FEATURE_SETS

PIXEL_COMPONENTS = 50
GRAPH_COMPONENTS = 10
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
        if "pixels" in requested and not have_pixels:
            raise DataError(f"feature set {requested!r} needs the images, not only their latents: give `data` as well")
        return [requested]
    return list(FEATURE_SETS[1:]) if have_pixels else ["latents"]
