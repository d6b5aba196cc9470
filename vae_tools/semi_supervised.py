"""Labels for every image from a few: choose the features by cross-validation, propagate, then
sharpen the latents with the propagated labels (self-training) and keep a round only when the
labels held back from it (each fold of them in turn) say it helped."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import NamedTuple, Optional

import numpy as np
from sklearn.base import BaseEstimator, clone

from vae_tools.data import ImageDataset
from vae_tools.embedding import embed, latent_matrix
from vae_tools.errors import DataError
from vae_tools.latent.defaults import (CV_FOLDS, ENSEMBLE_LIMIT, ENSEMBLE_MAPS, FEATURES, JUDGE_FOLDS,
                                       MIN_JUDGING_LABELS, PREFERRED_FEATURES, REFINE_EPOCHS, REFINE_ROUNDS)
from vae_tools.latent.features import candidate_names, effective_maps, feature_matrix, pixel_components
from vae_tools.latent.reducers import reduced_maps, reduces
from vae_tools.latent.labels import unlabelled_mask
from vae_tools.latent.propagation import LabelPropagator
from vae_tools.latent.validation import (cross_validated_accuracy, held_back_correct, held_back_true_probability,
                                         labelled_folds, without_labels)
from vae_tools.models.base import BaseVAE, as_module
from vae_tools.progress import progress as progress_of
from vae_tools.training.label_fine_tune import fine_tune_on_labels


@dataclass
class PropagationResult:
    propagator: LabelPropagator  # fitted on ``space`` with every given label
    model: BaseVAE  # the fine-tuned VAE of the last accepted round (the input model when none was)
    latents: np.ndarray
    spaces: np.ndarray  # (n_maps, n_samples, d): the coordinates each neighbour graph was built on
    features: str  # the feature set used
    feature_scores: dict = field(default_factory=dict)  # cross-validated accuracy of each candidate
    rounds: list = field(default_factory=list)  # per round: seconds, held-back accuracy, accepted
    refinement_note: str = ""
    maps_note: str = ""  # why ``spaces`` holds as many maps as it does


def dataset_pixels(dataset: ImageDataset, batch_size: int = 4096) -> np.ndarray:
    """Every image of ``dataset`` flattened, float32 in [0, 1]."""
    return np.concatenate([x.numpy().reshape(len(x), -1) for _, x in dataset.iter_batches(batch_size)])


def propagate_labels(
    model: Optional[BaseVAE],
    dataset: Optional[ImageDataset],
    y_partial,
    propagator: Optional[LabelPropagator] = None,
    *,
    features: str = FEATURES,
    refine_rounds: int = REFINE_ROUNDS,
    refine_epochs: int = REFINE_EPOCHS,
    label_weight: float = 100.0,
    device="cpu",
    seed: int = 0,
    progress: bool = True,
    y_true=None,
    latents: Optional[np.ndarray] = None,
) -> PropagationResult:
    """Round 0 propagates over a feature set (latents, pixels or both) chosen by cross-validation on
    the given labels (``choose_features``: latents+pixels unless another set is clearly better),
    averaged over the propagator's ``n_maps`` UMAP maps of it. Each refinement round fine-tunes a
    copy of the VAE on the ELBO plus a classifier loss on the current labels, re-embeds and
    propagates again. It is judged by cross-fitting: the given labels are split into
    ``JUDGE_FOLDS`` folds, each fold's own line of rounds runs without that fold's labels, and the
    round is kept only if, added over the folds, it predicts more of the labels held back from it
    correctly than the best round so far (so each kept round costs ``JUDGE_FOLDS`` + 1 fine-tunings).
    ``latents``: the model's embeddings of ``dataset`` when the
    caller already has them. Without ``dataset`` only the latents are used; without ``model`` (or
    ``dataset``) there is no refinement."""
    base = clone(propagator) if propagator is not None else LabelPropagator(random_state=seed)
    on_space = clone(base).set_params(reduce="none")
    y = np.asarray(y_partial)
    hidden = unlabelled_mask(y)
    started = time.perf_counter()
    if latents is None:
        latents = latent_matrix(embed(model, dataset, device=device, progress=progress))
    mapped = reduces(base.reduce, len(latents))
    n_maps = effective_maps(base.n_maps, len(latents))
    names = candidate_names(features, have_pixels=dataset is not None)
    pixels = pixel_components(dataset_pixels(dataset), seed=seed) if names != ["latents"] else None

    def maps_of(name: str, lat: np.ndarray, count: int, first: Optional[np.ndarray] = None) -> np.ndarray:
        matrix = feature_matrix(name, lat, pixels)
        return reduced_maps(matrix, base.reduce, base.n_components, seed, base.umap_backend, count, first)

    # One map per candidate is enough to rank them; only the chosen set pays for the other maps.
    single = {name: maps_of(name, latents, 1) for name in names}
    scores = {name: cross_validated_accuracy(on_space, single[name], y, CV_FOLDS, seed) for name in names} \
        if len(names) > 1 else {}
    chosen = choose_features(scores, int((~hidden).sum())) if scores else names[0]
    space = maps_of(chosen, latents, n_maps, first=single[chosen][0])
    maps_note = _maps_note(mapped, base.n_maps, n_maps, len(space), len(latents))

    def propagated(lineage_model, lat, maps, labels) -> Lineage:
        return Lineage(lineage_model, lat, maps, clone(on_space).fit(maps, labels), labels)

    def refined(lineage: Lineage, r: int) -> Lineage:
        """``lineage`` one round on: its VAE fine-tuned on its own propagated labels, re-embedded,
        re-mapped and propagated with the same labels."""
        fitted, trial_model = lineage.fitted, copy.deepcopy(lineage.model)
        codes = np.searchsorted(fitted.classes_, fitted.transduction_)
        fine_tune_on_labels(trial_model, dataset, codes, fitted.confidence_, len(fitted.classes_),
                            epochs=refine_epochs, label_weight=label_weight, device=device, seed=seed + r,
                            progress=progress)
        trial_latents = latent_matrix(embed(trial_model, dataset, device=device, progress=progress))
        return propagated(trial_model, trial_latents, maps_of(chosen, trial_latents, n_maps), lineage.labels)

    folds = labelled_folds(y, JUDGE_FOLDS, seed)
    n_judging = sum(len(fold) for fold in folds)
    note = _refinement_blocker(refine_rounds, model is not None and dataset is not None, chosen, n_judging,
                               getattr(as_module(model), "stops_early", True) if model is not None else True)
    full = propagated(model, latents, space, y)
    # One lineage per fold, never shown that fold's labels, so that they can judge its rounds.
    judges = [propagated(model, latents, space, without_labels(y, fold)) for fold in folds] if not note else []
    best = _judged_score(judges, folds, y)
    rounds = [_round_info(0, started, best, True, full, hidden, y_true)]
    for r in range(1, refine_rounds + 1 if not note else 1):
        started = time.perf_counter()
        trials = [refined(judge, r) for judge in progress_of(judges, desc=f"refinement round {r}: judging folds",
                                                             unit="fold", enabled=progress)]
        score = _judged_score(trials, folds, y)
        accepted = score.beats(best)
        # A dropped round's full version is only built to report what it would have given.
        trial_full = refined(full, r) if accepted or y_true is not None else None
        rounds.append(_round_info(r, started, score, accepted, trial_full, hidden, y_true))
        if not accepted:
            note = (f"round {r} predicted {score.correct} of {n_judging} labels held back from it (mean true-class "
                    f"probability {score.mean_probability:.3f}), not more than the {best.correct} "
                    f"({best.mean_probability:.3f}) before it, so it was dropped and refinement stopped")
            break
        full, judges, best = trial_full, trials, score
    return PropagationResult(full.fitted, full.model, full.latents, full.space, chosen, scores, rounds, note,
                             maps_note)


class Lineage(NamedTuple):
    """One line of refinement rounds: a VAE, its latents and maps, and the propagation of
    ``labels`` fitted on those maps."""

    model: Optional[BaseVAE]
    latents: np.ndarray
    space: np.ndarray
    fitted: LabelPropagator
    labels: np.ndarray


def choose_features(scores: dict, n_labels: int, preferred: str = PREFERRED_FEATURES) -> str:
    """``preferred`` (it holds both the latents and the pixels), unless another feature set's
    cross-validated accuracy beats it by more than one standard error: a difference of a label or
    two out of a few hundred is noise, not a reason to drop half the information."""
    reference = scores.get(preferred)
    if reference is None:
        return max(scores, key=lambda n: scores[n] if scores[n] is not None else -1.0)
    margin = np.sqrt(reference * (1 - reference) / max(n_labels, 1))
    better = {n: v for n, v in scores.items() if v is not None and v > reference + margin}
    return max(better, key=better.get) if better else preferred


def _maps_note(mapped: bool, asked, wanted: int, made: int, n_samples: int) -> str:
    if not mapped:
        return "no UMAP map: the graph is built on the features themselves"
    if made < wanted:
        return "the features are already as small as a map, so they are used as they are"
    if asked != "auto":
        return f"{made} map(s), as asked"
    return (f"auto: {ENSEMBLE_MAPS} maps up to {ENSEMBLE_LIMIT:,} samples, 1 beyond; {n_samples:,} here, "
            f"so {made}")


def _refinement_blocker(refine_rounds: int, have_model: bool, chosen: str, n_judging: int,
                        plain_elbo: bool = True) -> str:
    if refine_rounds <= 0:
        return "refinement is off"
    if not have_model:
        return "refinement needs the model and the images"
    if not plain_elbo:
        # Fine-tuning on the ELBO and the labels alone would drop the term the model's codes rest on.
        return ("refinement fine-tunes on the ELBO and the labels, which would undo the photo model's "
                "consistency term; it is not yet adapted to that model, so it is skipped")
    if chosen == "pixels":
        return "the pixels scored best, so fine-tuning the VAE cannot change the result"
    if n_judging < MIN_JUDGING_LABELS:
        return (f"too few labels to judge a refinement round ({n_judging} given, {MIN_JUDGING_LABELS} needed: "
                "one lucky label would be worth more than a round changes)")
    return ""


def _judged_score(lineages: list, folds: list, y) -> HeldBackScore:
    """Every fold's labels scored on the lineage that never saw them, added up (nothing judged
    without lineages)."""
    if not lineages:
        return HeldBackScore(0, np.zeros(0))
    correct = sum(held_back_correct(lineage.fitted, y, fold) for lineage, fold in zip(lineages, folds))
    probabilities = np.concatenate([held_back_true_probability(lineage.fitted, y, fold)
                                    for lineage, fold in zip(lineages, folds)])
    return HeldBackScore(correct, probabilities)


class HeldBackScore(NamedTuple):
    """How a round does on the labels held back from it: how many it predicts correctly, and the
    probability it gives each one's true class."""

    correct: int
    probabilities: np.ndarray

    @property
    def mean_probability(self) -> float:
        return float(self.probabilities.mean()) if len(self.probabilities) else 0.0

    def beats(self, other: "HeldBackScore") -> bool:
        """Strictly more held-back labels right. The true-class probability is recorded but does
        not decide: fine-tuning on (pseudo-)labels sharpens every prediction, so it rises whether
        or not the round helps. Breaking ties by it (even by more than a standard error) kept
        two digits rounds that cost 0.65 points."""
        return self.correct > other.correct


def _round_info(index, started, score, accepted, full: Optional[Lineage], hidden, y_true) -> dict:
    judged = len(score.probabilities)
    info = {"round": index, "held_back": judged, "held_back_correct": int(score.correct),
            "held_back_accuracy": round(score.correct / judged, 4) if judged else None,
            "held_back_true_class_probability": round(score.mean_probability, 4), "accepted": bool(accepted)}
    if y_true is not None and hidden.any() and full is not None:
        # Scored as the round would be used: propagated with every given label.
        predicted = full.fitted.transduction_[hidden]
        info["accuracy_unlabelled"] = float(np.mean(predicted.astype(str) == np.asarray(y_true)[hidden].astype(str)))
    info["seconds"] = round(time.perf_counter() - started, 2)
    return info


class SelfTrainingPropagator(BaseEstimator):
    """Label propagation over a trained VAE's latent space with guarded self-training, as a
    meta-estimator in the manner of scikit-learn's ``SelfTrainingClassifier``: ``fit(X, y)`` with
    ``y = -1`` (or None) for the unlabelled images, then read ``transduction_``.

    ``vae``: a trained VAE module or a fitted ``VAEEmbedder``; ``propagator``: the
    :class:`LabelPropagator` whose settings propagation uses (a default one when None). Each of
    ``refine_rounds`` fine-tunes a copy of the VAE on the current labels and is kept only if it
    predicts more held-back labels correctly, each fold of the labels held back in turn (see
    :func:`propagate_labels`).

    Attributes: ``transduction_``, ``label_distributions_``, ``classes_``, ``features_`` (the
    feature set chosen by cross-validation), ``rounds_`` (one dict per round, accepted or not),
    ``n_iter_`` (refinement rounds kept), ``termination_condition_`` (why refinement stopped),
    ``model_`` (the VAE of the last kept round).
    """

    def __init__(self, vae, propagator: Optional[LabelPropagator] = None, *, features: str = FEATURES,
                 refine_rounds: int = REFINE_ROUNDS, refine_epochs: int = REFINE_EPOCHS, label_weight: float = 100.0,
                 device: str = "cpu", random_state: int = 0, verbose: bool = False):
        self.vae = vae
        self.propagator = propagator
        self.features = features
        self.refine_rounds = refine_rounds
        self.refine_epochs = refine_epochs
        self.label_weight = label_weight
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def fit(self, X, y) -> "SelfTrainingPropagator":
        from vae_tools.sklearn_api import as_dataset

        module = as_module(self.vae)
        dataset = as_dataset(X, image_size=tuple(module.image_shape[1:]), channels=module.image_shape[0])
        if len(y) != len(dataset):
            raise DataError(f"y holds {len(y)} labels for {len(dataset)} images")
        result = propagate_labels(module, dataset, y, self.propagator, features=self.features,
                                  refine_rounds=self.refine_rounds, refine_epochs=self.refine_epochs,
                                  label_weight=self.label_weight, device=self.device, seed=self.random_state,
                                  progress=self.verbose)
        fitted = result.propagator
        self.transduction_ = fitted.transduction_
        self.label_distributions_ = fitted.label_distributions_
        self.classes_ = fitted.classes_
        self.features_ = result.features
        self.rounds_ = result.rounds
        self.n_iter_ = sum(r["accepted"] for r in result.rounds[1:])
        self.termination_condition_ = result.refinement_note or "all rounds kept"
        self.model_ = result.model
        return self
