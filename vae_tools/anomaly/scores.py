"""Per-image anomaly scores from a trained VAE; higher always means more anomalous.

- ``elbo``: negative ELBO (nats), Monte Carlo over ``samples`` draws of z;
- ``iwae``: negative importance-weighted bound with the same draws (Burda et al. 2016), a tighter
  estimate of -log p(x);
- ``recon``: the reconstruction term of the negative ELBO; ``kl``: its KL term;
- ``latent``: negative log-density of the posterior mean under a Gaussian mixture fitted to the
  latents of the reference images;
- ``adjusted``: the IWAE estimate of -log p(x) minus ``w`` times the image's complexity (below), where
  ``w`` is the slope of -log p(x) on the complexity over the typical reference images (the
  training images), fitted robustly (Theil-Sen) and kept only when clearly different from 1: what
  is left is the part of -log p(x) that the image's complexity does not explain among normal
  images. ``w`` = 1 is ``complexity``; fitted, ``w`` came out between 1.1 and 1.6 on
  Kuzushiji-MNIST's classes, where plain subtraction left complex normal images high.
- ``complexity``: the IWAE estimate of -log p(x) minus the image's own complexity, both in nats.
  Likelihoods rate simple images (blank pages, thin strokes) as very likely whatever the model was
  trained on (Nalisnick et al. 2019). Serrà et al. (2020) subtract a compressor's code length;
  Ren et al. (2019) a background model's log-likelihood. Here the background is generic and free:
  every pixel predicted from the mean of its 3x3 neighbourhood, scored with the VAE's own pixel
  likelihood, so both terms are in the same units (a PNG code length of 8-bit pixels is ten times
  larger than a Bernoulli likelihood of the same image and would swamp it).
"""

from __future__ import annotations


import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from vae_tools.anomaly.defaults import SAMPLES, SCORING_BATCH_SIZE
from vae_tools.anomaly.score_choice import check_computable
from vae_tools.anomaly.score_registry import BACKGROUND, LIKELIHOOD, PART_COLUMNS, ROTATION, get_score
from vae_tools.data import ImageDataset
from vae_tools.errors import DataError
from vae_tools.models.base import BaseVAE
from vae_tools.models.inference import likelihood_terms
from vae_tools import distributed

def neighbourhood_prediction(x: torch.Tensor) -> torch.Tensor:
    """Each pixel predicted from its 8 neighbours: (sum + 0.5) / (count + 1), so never exactly 0 or 1."""
    kernel = torch.ones(1, 1, 3, 3, dtype=x.dtype, device=x.device)
    kernel[0, 0, 1, 1] = 0
    channels = x.shape[1]
    flat = x.reshape(-1, 1, *x.shape[2:])
    sums = F.conv2d(flat, kernel, padding=1)
    counts = F.conv2d(torch.ones_like(flat), kernel, padding=1)
    return ((sums + 0.5) / (counts + 1)).reshape(x.shape[0], channels, *x.shape[2:])


def background_nll(model: BaseVAE, x: torch.Tensor) -> torch.Tensor:
    """-log p(x) under the generic neighbourhood model, with the VAE's pixel likelihood (nats)."""
    mean = neighbourhood_prediction(x)
    decoded = torch.logit(mean) if model.likelihood == "bernoulli" else mean
    return model.reconstruction_nll(decoded, x).float()


@torch.no_grad()
def score_parts(model: BaseVAE, dataset: ImageDataset, samples: int = SAMPLES, batch_size: int = SCORING_BATCH_SIZE,
                device: torch.device | str = "cpu", seed: int = 0, progress: bool = False,
                needs: tuple = (LIKELIHOOD, BACKGROUND)) -> tuple[pd.DataFrame, np.ndarray]:
    """The per-image quantities ``needs`` asks for (score_registry.PART_COLUMNS: elbo, iwae, recon
    and kl for the likelihood; background) and the posterior means, in one pass. Without the
    likelihood the images are only encoded, not decoded ``samples`` times.

    Every batch draws the same z noise from ``seed`` (``likelihood_terms``), so an image's row depends
    on the image alone: not on the batch it is scored in, the images beside it, or, under
    torch.distributed, the process that scores it."""
    if tuple(dataset.shape) != tuple(model.image_shape):
        raise DataError(f"{dataset.name}: images are {dataset.shape} but the model expects {tuple(model.image_shape)}")
    if samples < 1:
        raise DataError(f"`samples` must be at least 1, got {samples}")
    if ROTATION in needs:
        check_computable(model, [ROTATION])
    names = [column for part in PART_COLUMNS if part in needs for column in PART_COLUMNS[part]]
    model = model.to(device).eval()
    start, stop = distributed.batch_share(len(dataset), batch_size)
    share = dataset.subset(np.arange(start, stop)) if stop > start else None  # a small set may leave a process none
    columns, means = [], []
    for x in _images_of(share, batch_size, progress):
        parts, mu = _batch_scores(model, x.to(device), samples, torch.Generator().manual_seed(seed), needs)
        columns.append(parts)
        means.append(mu)
    columns = distributed.gather_batches(columns, len(dataset), batch_size,
                                         torch.zeros(0, len(names), dtype=torch.float64, device=device)).cpu().numpy()
    means = distributed.gather_batches(means, len(dataset), batch_size,
                                       torch.zeros(0, model.latent_dim, device=device)).cpu().numpy()
    return pd.DataFrame({name: columns[:, i] for i, name in enumerate(names)}), means


def _images_of(share: ImageDataset | None, batch_size: int, progress: bool):
    return (x for _, x in share.iter_batches(batch_size, progress=progress, desc="scoring")) if share else ()


def _batch_scores(model: BaseVAE, x: torch.Tensor, samples: int, generator: torch.Generator, needs: tuple):
    """(batch, columns) float64 quantities and the posterior means of one batch."""
    mu, logvar = model.encode(x)
    mu, logvar = mu.float(), logvar.float()
    columns = []
    if LIKELIHOOD in needs:
        terms = likelihood_terms(model, x, mu, logvar, samples, generator)
        columns += [terms[name] for name in PART_COLUMNS[LIKELIHOOD]]
    if BACKGROUND in needs:
        columns.append(background_nll(model, x))
    if ROTATION in needs:
        columns.append(model.rotation_nll(x))
    parts = torch.stack(columns, 1) if columns else torch.zeros(len(x), 0, device=x.device)
    return parts.double(), mu


def latent_mixture(reference: np.ndarray, n_components: int = 10, seed: int = 0):
    """A diagonal Gaussian mixture fitted to the ``reference`` latents (fewer components for few images)."""
    from sklearn.mixture import GaussianMixture

    n_components = max(1, min(n_components, len(reference) // 10))
    return GaussianMixture(n_components=n_components, covariance_type="diag", random_state=seed).fit(reference)


def complexity_weight(iwae: np.ndarray, background: np.ndarray, seed: int = 0, max_points: int = 1000) -> dict:
    """How much -log p(x) grows per nat of the image's complexity among typical reference images:
    the Theil-Sen slope over the images whose background NLL lies between its 10th and 90th
    percentiles (a random ``max_points`` of them; the estimator compares every pair), and 1 -- plain
    subtraction -- unless its 95% interval excludes 1. Fitting on the typical images keeps a few
    complex anomalies among the reference images from setting the slope themselves.
    Returns {"value": the weight, "why": one sentence}."""
    from scipy.stats import theilslopes

    iwae, background = np.asarray(iwae, dtype=np.float64), np.asarray(background, dtype=np.float64)
    low, high = np.percentile(background, [10, 90]) if len(background) else (0.0, 0.0)
    typical = np.flatnonzero((background >= low) & (background <= high))
    if len(typical) < 10 or high <= low:
        return {"value": 1.0, "why": "too few images of differing complexity to fit a weight, so plain subtraction"}
    keep = np.random.default_rng(seed).permutation(typical)[:max_points]
    slope, _, slope_low, slope_high = theilslopes(iwae[keep], background[keep], alpha=0.95)
    fitted = (f"over {len(keep)} typical reference images -log p(x) grows {slope:.2f} nats per nat of complexity "
              f"(95% interval {slope_low:.2f} to {slope_high:.2f})")
    if slope_low <= 1.0 <= slope_high:
        return {"value": 1.0, "why": fitted + ", which holds 1, so plain subtraction"}
    value = max(0.0, float(slope))
    return {"value": value, "why": fitted + f", so the complexity is subtracted {value:.2f} times"}


def compute_scores(model: BaseVAE, dataset: ImageDataset, names, samples: int = SAMPLES,
                   batch_size: int = SCORING_BATCH_SIZE, device: torch.device | str = "cpu", seed: int = 0,
                   progress: bool = False, fitted: dict | None = None) -> tuple[pd.DataFrame, np.ndarray, dict]:
    """The scores ``names`` (registered in score_registry) for every image, computing only what they
    need. A score with a state (``adjusted``'s weight, ``latent``'s mixture) takes it from
    ``fitted`` (by name), or fits it on these images. Returns (the pass's columns plus a column per
    score, the posterior means, the states by score name)."""
    needs = tuple(sorted({need for name in names for need in get_score(name).needs}))
    table, latents = score_parts(model, dataset, samples, batch_size, device, seed, progress, needs=needs)
    table, states = scores_from_parts(table, latents, names, seed, fitted)
    return table, latents, states


def scores_from_parts(parts: pd.DataFrame, latents: np.ndarray, names, seed: int = 0,
                      fitted: dict | None = None) -> tuple[pd.DataFrame, dict]:
    """The scores ``names`` from a pass's columns and posterior means (``score_parts``): the columns
    plus a column per score, and the states by score name (those in ``fitted`` kept, the others
    fitted on these images)."""
    table, states = parts.copy(), dict(fitted or {})
    for score in (get_score(name) for name in names):
        if score.fit is not None and score.name not in states:
            states[score.name] = score.fit(table, latents, seed)
        table[score.name] = checked_values(score.name, score.compute(table, latents, states.get(score.name)),
                                           len(latents))
    return table, states


def checked_values(name: str, values, n_images: int) -> np.ndarray:
    """A score's values as floats, one finite number per image; a score (a plugin's, say) that gives
    anything else is one error naming it, not a broken report."""
    try:
        values = np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise DataError(f"the anomaly score {name!r} gave values that are not numbers") from None
    if len(values) != n_images:
        raise DataError(f"the anomaly score {name!r} gave {len(values)} values for {n_images} images")
    bad = int((~np.isfinite(values)).sum())
    if bad:
        raise DataError(f"the anomaly score {name!r} gave {bad} of {n_images} values that are not finite numbers "
                        "(NaN or infinite); choose another `score`")
    return values
