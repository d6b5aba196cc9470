"""Anomaly scores as named units: each one a :class:`Score` with its name, its help line, the per-image
quantities it needs from the scoring pass, and, where it has one, the state it fits on the reference
(normal) images. Only what the asked scores need is computed (``scores.compute_scores``).

Higher always means more anomalous. Register another score with ``register_score``, or from another
distribution through the entry-point group ``vaetools.scores`` (each entry point names a Score).
Light: the command line's help reads the names and help lines without torch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

from vae_tools.errors import DataError
from vae_tools.plugins import register_plugins

ENTRY_POINT_GROUP = "vaetools.scores"
# What one scoring pass can compute per image: the Monte Carlo likelihood terms (decoding each image
# ``samples`` times), and the generic background model's NLL (one convolution). The posterior means
# ("latents") come with every pass. The rotation head's NLL takes one encoder pass per turn of the image.
LIKELIHOOD = "likelihood"  # columns elbo, iwae, recon, kl
BACKGROUND = "background"  # column background
ROTATION = "rotation"  # column rotation: how unsure a photo model's rotation head is of the image's turns
PART_COLUMNS = {LIKELIHOOD: ("elbo", "iwae", "recon", "kl"), BACKGROUND: ("background",), ROTATION: ("rotation",)}


@dataclass(frozen=True)
class Score:
    """``compute(parts, latents, state)``: one value per image from the pass's columns (a DataFrame)
    and posterior means; ``fit(parts, latents, seed)``: the state fitted on the reference images,
    and ``explain(state)``: {"value", "why"}, recorded under ``choice`` in a report's choices."""

    name: str
    help: str
    needs: tuple
    compute: Callable[[Any, Any, Any], Any]
    fit: Optional[Callable[[Any, Any, int], Any]] = None
    explain: Optional[Callable[[Any], dict]] = None
    choice: Optional[str] = None


def _column(name: str):
    return lambda parts, latents, state: parts[name].to_numpy()


def _fit_weight(parts, latents, seed):
    from vae_tools.anomaly.scores import complexity_weight

    return complexity_weight(parts["iwae"], parts["background"], seed)


def _fit_mixture(parts, latents, seed):
    from vae_tools.anomaly.scores import latent_mixture

    return latent_mixture(latents, seed=seed)


def _mixture_why(mixture) -> dict:
    return {"value": int(mixture.n_components),
            "why": f"a {mixture.n_components}-component diagonal Gaussian mixture fitted to the reference images' codes"}


KNN_NEIGHBOURS = 5


def _fit_neighbours(parts, latents, seed):
    from sklearn.neighbors import NearestNeighbors

    # One more than needed: scored against itself, a reference image's nearest code is its own.
    return NearestNeighbors(n_neighbors=min(KNN_NEIGHBOURS + 1, len(latents))).fit(latents)


def _knn_distance(parts, latents, index):
    """Mean distance to the nearest reference codes, leaving out a neighbour at distance 0 (the image
    itself when the reference images are scored; a duplicate of a reference image otherwise)."""
    import numpy as np

    distances, _ = index.kneighbors(latents)
    own = distances[:, :1] == 0
    kept = np.where(own, distances[:, 1:], distances[:, :-1]) if distances.shape[1] > 1 else distances
    return kept.mean(1)


def _neighbours_why(index) -> dict:
    k = index.n_neighbors - 1 or 1
    return {"value": k, "why": f"the mean distance to the {k} nearest of the {index.n_samples_fit_} reference images' "
                               "codes (each reference image scored without itself)"}


def _robust_scale(values) -> tuple:
    import numpy as np

    low, median, high = np.percentile(values, [25, 50, 75])
    return float(median), float(high - low) or 1.0


def _fit_turns_and_neighbours(parts, latents, seed):
    """The knn index and, on the reference images, each score's median and interquartile range."""
    index = _fit_neighbours(parts, latents, seed)
    return {"index": index, "rotation": _robust_scale(parts["rotation"].to_numpy()),
            "knn": _robust_scale(_knn_distance(parts, latents, index))}


def _turns_and_neighbours(parts, latents, state):
    """Each score in the reference images' robust units (how many interquartile ranges above their
    median), added: an image odd by either counts."""
    (rotation_median, rotation_range), (knn_median, knn_range) = state["rotation"], state["knn"]
    knn = _knn_distance(parts, latents, state["index"])
    return (parts["rotation"].to_numpy() - rotation_median) / rotation_range + (knn - knn_median) / knn_range


_SCORES: dict = {}
_loaded = False


def register_score(score: Score) -> Score:
    if score.name in _SCORES:
        raise ValueError(f"score {score.name!r} is already registered")
    unknown = set(score.needs) - set(PART_COLUMNS)
    if unknown:
        raise ValueError(f"score {score.name!r} needs {', '.join(sorted(unknown))}; a pass computes "
                         f"{', '.join(PART_COLUMNS)} (and the latents)")
    _SCORES[score.name] = score
    return score


def unregister_score(name: str) -> None:
    _SCORES.pop(name, None)


def _load_outside() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    register_plugins(ENTRY_POINT_GROUP, Score, lambda name: name in _SCORES, register_score, "anomaly score")


def get_score(name: str) -> Score:
    _load_outside()
    if name not in _SCORES:
        raise DataError(f"unknown score {name!r}: use one of {', '.join(list_scores())}")
    return _SCORES[name]


def list_scores() -> tuple:
    _load_outside()
    return tuple(_SCORES)


for _score in (
    Score("adjusted", "importance-weighted -log p(x) minus the part of it that the image's complexity explains, "
                      "weighted by a slope fitted on the reference images (robust to simple and to complex normal "
                      "images)", (LIKELIHOOD, BACKGROUND),
          lambda parts, latents, state: (parts["iwae"] - state["value"] * parts["background"]).to_numpy(),
          fit=_fit_weight, explain=lambda state: state, choice="background_weight"),
    Score("complexity", "the same with weight 1, where complexity is the image's -log-likelihood under a generic "
                        "background model that predicts each pixel from its neighbours", (LIKELIHOOD, BACKGROUND),
          lambda parts, latents, state: (parts["iwae"] - parts["background"]).to_numpy()),
    Score("iwae", "importance-weighted -log p(x)", (LIKELIHOOD,), _column("iwae")),
    Score("elbo", "negative ELBO", (LIKELIHOOD,), _column("elbo")),
    Score("recon", "its reconstruction term", (LIKELIHOOD,), _column("recon")),
    Score("kl", "its KL term", (LIKELIHOOD,), _column("kl")),
    Score("latent", "low density of the latent code under a mixture fitted to the reference images' codes", (),
          lambda parts, latents, state: -state.score_samples(latents), fit=_fit_mixture, explain=_mixture_why,
          choice="latent_mixture"),
    # On colour photos (CIFAR-10 one-vs-rest, a photo model trained 30 epochs a class) this was the best
    # score measured: mean AUROC 0.625 against 0.560 for adjusted (bench/results/photos_oneclass.json).
    Score("knn", f"distance of the latent code to its {KNN_NEIGHBOURS} nearest reference images' codes "
                 "(no density model)", (), _knn_distance, fit=_fit_neighbours, explain=_neighbours_why,
          choice="knn_neighbours"),
    Score("rotation", "how unsure the photo model is of which way up the image was turned (its rotation head, "
                      "trained on the normal images: sure on images like them)", (ROTATION,), _column("rotation")),
    # The two see different things (CIFAR-10 one-vs-rest, 4 classes: rotation did best on cars and cats,
    # knn on planes and birds; their sum beat both on average, 0.74 against 0.72 and 0.68).
    Score("rotation+knn", "rotation and knn, each in the reference images' robust units, added (for photos)",
          (ROTATION,), _turns_and_neighbours, fit=_fit_turns_and_neighbours),
):
    register_score(_score)
