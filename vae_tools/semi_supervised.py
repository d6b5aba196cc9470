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
from vae_tools.latent.defaults import (BUDGET, BUDGETS, CV_FOLDS, ENSEMBLE_LIMIT, ENSEMBLE_MAPS, FEATURES,
                                       MIN_JUDGING_LABELS, PREFERRED_FEATURES, RANKING_SAMPLES, REFINE_EPOCHS,
                                       REFINEMENT,
                                       REFINEMENT_FOLDS, REFINEMENTS)
from vae_tools.latent import cost
from vae_tools.latent.features import (PIXEL_COMPONENTS, candidate_names, effective_maps, feature_matrix,
                                       pixel_components)
from vae_tools.latent.projection import check_umap_backend
from vae_tools.latent.reducers import GRAPH_MAP_EPOCHS, check_reduce, reduced_maps, reduces
from vae_tools.latent.labels import unlabelled_mask
from vae_tools.latent.propagation import LabelPropagator
from vae_tools.latent.validation import (cross_validated_accuracy, held_back_correct, held_back_true_probability,
                                         labelled_folds, without_labels)
from vae_tools.models.base import BaseVAE, as_module
from vae_tools.progress import note as note_progress
from vae_tools.progress import progress as progress_of
from vae_tools.training.label_fine_tune import fine_tune_on_labels


@dataclass
class PropagationResult:
    propagator: LabelPropagator  # fitted on ``space`` with every given label
    # The trained VAE of the last accepted round (the input model when none was). After an "encoder"
    # round only its encoder learnt: it gives the refined latents, but its decoder is the input's.
    model: BaseVAE
    latents: np.ndarray
    spaces: np.ndarray  # (n_maps, n_samples, d): the coordinates each neighbour graph was built on
    features: str  # the feature set used
    feature_scores: dict = field(default_factory=dict)  # cross-validated accuracy of each candidate
    rounds: list = field(default_factory=list)  # per round: seconds, held-back accuracy, accepted
    refinement_note: str = ""
    maps_note: str = ""  # why ``spaces`` holds as many maps as it does
    plan: Optional[RefinementPlan] = None  # the refinement asked for (rounds kept: ``rounds``)


def dataset_pixels(dataset: ImageDataset, batch_size: int = 4096) -> np.ndarray:
    """Every image of ``dataset`` flattened, float32 in [0, 1] (read-only when they are in memory)."""
    return dataset.flat_pixels(batch_size)


def propagate_labels(
    model: Optional[BaseVAE],
    dataset: Optional[ImageDataset],
    y_partial,
    propagator: Optional[LabelPropagator] = None,
    *,
    features: str = FEATURES,
    budget: str = BUDGET,
    refinement: Optional[str] = None,
    refine_rounds: Optional[int] = None,
    refine_epochs: Optional[int] = None,
    device="cpu",
    seed: int = 0,
    progress: bool = True,
    y_true=None,
    latents: Optional[np.ndarray] = None,
) -> PropagationResult:
    """Round 0 propagates over a feature set (latents, pixels or both) chosen by cross-validation on
    the given labels (``choose_features``: the model's ``preferred_features`` -- latents+pixels, the
    photo model's latents -- unless another set is clearly better),
    averaged over the propagator's ``n_maps`` UMAP maps of it. Each refinement round trains a copy
    of the VAE on the current labels (``refinement``: ``encoder``, the encoder and a linear head on
    them alone; ``vae``, the whole VAE on the ELBO plus that classifier loss), re-embeds and propagates
    again. It is judged by cross-fitting: the given labels are split into folds
    (``REFINEMENT_FOLDS``), each fold's own line of rounds runs without that fold's labels, and the
    round is kept only if, added over the folds, it predicts more of the labels held back from it
    correctly than the best round so far. ``encoder`` then propagates every label over the fold
    lines' latents pooled as maps (two trainings a round); ``vae`` fine-tunes a full version and
    re-maps it (five). ``budget`` (``BUDGETS``: fast, balanced, best) names a set of these choices;
    ``refinement``, ``refine_rounds`` and ``refine_epochs`` given here override it.
    ``latents``: the model's embeddings of ``dataset`` when the
    caller already has them. Without ``dataset`` only the latents are used; without ``model`` (or
    ``dataset``) there is no refinement."""
    plan = refinement_plan(budget, refinement, refine_rounds, refine_epochs)
    base = clone(propagator) if propagator is not None else LabelPropagator(random_state=seed)
    y = np.asarray(y_partial)
    started = time.perf_counter()
    if latents is None:
        latents = latent_matrix(embed(model, dataset, device=device, progress=progress))
        embed_seconds = time.perf_counter() - started
    else:  # timed only for the plan, which only progress shows
        embed_seconds = embedding_seconds(model, dataset, device) if progress and model is not None \
            and dataset is not None else 0.0
    names = candidate_names(features, have_pixels=dataset is not None)
    check_umap_backend(base.umap_backend)  # a wrong setting is one error, before any plan is announced
    check_reduce(base.reduce)
    mapped, n_maps = reduces(base.reduce, len(latents)), effective_maps(base.n_maps, len(latents))
    refinable = model is not None and dataset is not None
    note_progress(plan_note(len(latents), names, base, latents.shape[1], plan if refinable else None,
                            embed_seconds), progress)
    pixels = pixel_components(dataset_pixels(dataset), seed=seed) if names != ["latents"] else None
    work = _Propagation(base, plan, dataset, pixels, y, n_maps, device, seed, progress)
    if model is not None:
        work.preferred = getattr(as_module(model), "preferred_features", (PREFERRED_FEATURES,))[0]
    chosen, scores, space = work.round_zero_space(names, latents)
    folds = labelled_folds(y, plan.folds, seed)
    note = _refinement_blocker(plan.rounds, refinable, chosen, sum(len(fold) for fold in folds), plan.refinement,
                               getattr(as_module(model), "stops_early", True) if model is not None else True)
    full = work.propagated(model, latents, space, y)
    # One lineage per fold, never shown that fold's labels, so that they can judge its rounds.
    judges = [work.propagated(model, latents, space, without_labels(y, fold)) for fold in folds] if not note else []
    best = _judged_score(judges, folds, y)
    rounds = [_round_info(0, started, best, True, full, work.hidden, y_true)]
    note_progress(f"round 0 done in {rounds[0]['seconds']:.0f}s" + (f"; {plan.rounds} refinement round(s) next, "
                  f"each about {_duration(round_estimate(len(latents), plan, embed_seconds, base, latents.shape[1]))}"
                  if not note else
                  f"; {note}"), progress)
    if not note:
        full, note = work.refine(full, judges, folds, best, rounds, y_true)
    return PropagationResult(full.fitted, full.model, full.latents, full.space, chosen, scores, rounds, note,
                             _maps_note(mapped, base.n_maps, n_maps, len(space), len(latents)), plan)


class _Propagation:
    """The settings one call of :func:`propagate_labels` shares between its stages."""

    def __init__(self, base: LabelPropagator, plan: RefinementPlan, dataset, pixels, y, n_maps: int, device,
                 seed: int, progress: bool):
        self.base, self.plan, self.dataset, self.pixels, self.y = base, plan, dataset, pixels, y
        self.on_space = clone(base).set_params(reduce="none")
        self.hidden = unlabelled_mask(y)
        self.n_maps, self.device, self.seed, self.progress = n_maps, device, seed, progress
        self.chosen = None  # the feature set round 0 chose; refined lines are mapped from it
        self.preferred = PREFERRED_FEATURES  # kept unless cross-validation finds another set clearly better

    def maps_of(self, name: str, latents: np.ndarray, count: int, first: Optional[np.ndarray] = None,
                rows: Optional[np.ndarray] = None) -> np.ndarray:
        matrix = feature_matrix(name, latents, self.pixels)
        matrix = matrix if rows is None else matrix[rows]
        base = self.base
        return reduced_maps(matrix, base.reduce, base.n_components, self.seed, base.umap_backend, count, first)

    def round_zero_space(self, names: list, latents: np.ndarray):
        """The feature set chosen by cross-validation, each set's score, and the chosen set's maps.
        One map per candidate is enough to rank them, and on large data a sample holding every
        label is: the ranking is a question about the labels. Only the chosen set pays for its full maps."""
        rows = ranking_rows(self.hidden, self.seed) if len(names) > 1 else None
        single = {name: self.maps_of(name, latents, 1, rows=rows) for name in names}
        scores = {name: cross_validated_accuracy(self.on_space, single[name], self.y[rows], CV_FOLDS, self.seed)
                  for name in names} if len(names) > 1 else {}
        self.chosen = chosen = choose_features(scores, int((~self.hidden).sum()), self.preferred) if scores \
            else names[0]
        whole = rows is None or len(rows) == len(latents)
        return chosen, scores, self.maps_of(chosen, latents, self.n_maps, first=single[chosen][0] if whole else None)

    def propagated(self, model, latents, maps, labels) -> Lineage:
        return Lineage(model, latents, maps, clone(self.on_space).fit(maps, labels), labels)

    def refined(self, lineage: Lineage, r: int) -> Lineage:
        """``lineage`` one round on: its VAE trained on its own propagated labels, re-embedded,
        (for ``vae``) re-mapped, and propagated with the same labels."""
        fitted, trial_model = lineage.fitted, copy.deepcopy(lineage.model)
        codes = np.searchsorted(fitted.classes_, fitted.transduction_)
        fine_tune_on_labels(trial_model, self.dataset, codes, fitted.confidence_, len(fitted.classes_),
                            **self.plan.fine_tuning, device=self.device, seed=self.seed + r, progress=self.progress)
        latents = latent_matrix(embed(trial_model, self.dataset, device=self.device, progress=self.progress))
        space = self.maps_of(self.chosen, latents, self.n_maps) if self.plan.remaps else latents[None]
        return self.propagated(trial_model, latents, space, lineage.labels)

    def pooled(self, lines: list) -> Lineage:
        """Every given label propagated over the fold lines' latents, each line's one map."""
        return self.propagated(lines[0].model, lines[0].latents, np.concatenate([line.space for line in lines]), self.y)

    def refine(self, full: Lineage, judges: list, folds: list, best: HeldBackScore, rounds: list, y_true):
        """Rounds until one does not beat the best before it (appended to ``rounds``); the lineage
        to use and why refinement stopped ("" when every round was kept)."""
        n_judging = sum(len(fold) for fold in folds)
        for r in range(1, self.plan.rounds + 1):
            started = time.perf_counter()
            trials = [self.refined(judge, r) for judge in progress_of(
                judges, desc=f"refinement round {r}: judging folds", unit="fold", enabled=self.progress)]
            score = _judged_score(trials, folds, self.y)
            accepted = score.beats(best)
            # A dropped round's full version is only built to report what it would have given.
            trial_full = None if not (accepted or y_true is not None) else self.pooled(trials) if self.plan.pools \
                else self.refined(full, r)
            rounds.append(_round_info(r, started, score, accepted, trial_full, self.hidden, y_true))
            if not accepted:
                return full, (f"round {r} predicted {score.correct} of {n_judging} labels held back from it (mean "
                              f"true-class probability {score.mean_probability:.3f}), not more than the "
                              f"{best.correct} ({best.mean_probability:.3f}) before it, so it was dropped and "
                              "refinement stopped")
            full, judges, best = trial_full, trials, score
        return full, ""


class Lineage(NamedTuple):
    """One line of refinement rounds: a VAE, its latents and maps, and the propagation of
    ``labels`` fitted on those maps."""

    model: Optional[BaseVAE]
    latents: np.ndarray
    space: np.ndarray
    fitted: LabelPropagator
    labels: np.ndarray


EMBED_PROBE_SAMPLES = 2048


def embedding_seconds(model: BaseVAE, dataset: ImageDataset, device) -> float:
    """About how long one embedding pass over ``dataset`` takes, from a timed pass over its first
    rows: the plan's yardstick when the caller embedded the data already."""
    rows = np.arange(min(len(dataset), EMBED_PROBE_SAMPLES))
    started = time.perf_counter()
    embed(model, dataset.subset(rows), device=device)
    return (time.perf_counter() - started) * len(dataset) / len(rows)


def round_estimate(n: int, plan: RefinementPlan, embed_seconds: float, base: LabelPropagator,
                   latent_dim: int) -> float:
    """A refinement round's seconds. Each training line fine-tunes (guessed from the embedding pass:
    a training step costs about three forward passes, halved by bf16 (encoder), tripled by the
    decoder (vae)), embeds, builds its graphs (on maps of the latents for vae, on the latents
    themselves for encoder) and spreads; the pooled version spreads over every fold line's graph."""
    training = plan.epochs * 3 * embed_seconds * (0.5 if plan.refinement == "encoder" else 3)
    if plan.remaps:
        maps = effective_maps(base.n_maps, n)
        space = maps * (cost.map_seconds(n, GRAPH_MAP_EPOCHS) + cost.graph_seconds(n, base.n_components)
                        + cost.spread_seconds(n))
    else:
        space = cost.graph_seconds(n, latent_dim) + cost.spread_seconds(n)
    pooled = plan.folds * cost.spread_seconds(n) if plan.pools else 0.0
    return plan.trainings * (training + embed_seconds + space) + pooled


def plan_note(n: int, names: list, base: LabelPropagator, latent_dim: int, plan: Optional[RefinementPlan],
              embed_seconds: float) -> str:
    """What propagation will do and about how long it will take (``latent.cost``), before it starts."""
    mapped, n_maps = reduces(base.reduce, n), effective_maps(base.n_maps, n)
    ranked = min(n, RANKING_SAMPLES) if len(names) > 1 else 0
    widest = latent_dim + (PIXEL_COMPONENTS if any("pixels" in name for name in names) else 0)
    seconds = embed_seconds + (cost.pixel_seconds(n) if widest > latent_dim else 0.0)
    text = f"plan: {n:,} samples; "
    if ranked:
        text += f"rank {len(names)} feature sets ({', '.join(names)}) by {CV_FOLDS}-fold cross-validation on " \
                f"{ranked:,} of them, then "
        ranking_mapped = reduces(base.reduce, ranked)
        seconds += len(names) * ((cost.map_seconds(ranked, GRAPH_MAP_EPOCHS) if ranking_mapped else 0.0)
                                 + cost.graph_seconds(ranked, base.n_components if ranking_mapped else widest)
                                 + CV_FOLDS * cost.spread_seconds(ranked))
    text += f"{n_maps} UMAP map(s) of the chosen set" if mapped else "a graph on the features themselves"
    seconds += n_maps * ((cost.map_seconds(n, GRAPH_MAP_EPOCHS) if mapped else 0.0)
                         + cost.graph_seconds(n, base.n_components if mapped else widest))
    refining = plan is not None and plan.rounds > 0
    # The full propagation and, when rounds will be judged, one per fold without that fold's labels.
    seconds += (1 + (plan.folds if refining else 0)) * n_maps * cost.spread_seconds(n)
    if refining:
        text += (f"; then up to {plan.rounds} refinement round(s) ({plan.refinement}): {plan.trainings} trainings of "
                 f"{plan.epochs} epochs each, kept only if the labels held back from it say it helped")
        seconds += plan.rounds * round_estimate(n, plan, embed_seconds, base, latent_dim)
    return text + f". About {_duration(seconds)} in all on this device"


def _duration(seconds: float) -> str:
    return f"{seconds:.0f}s" if seconds < 120 else f"{seconds / 60:.0f} min"


def ranking_rows(hidden: np.ndarray, seed: int, limit: int = RANKING_SAMPLES) -> np.ndarray:
    """Every labelled row and, up to ``limit`` rows in all, a random draw of the others, in order."""
    if len(hidden) <= limit:
        return np.arange(len(hidden))
    labelled, unlabelled = np.flatnonzero(~hidden), np.flatnonzero(hidden)
    extra = max(0, limit - len(labelled))
    drawn = np.random.default_rng(seed).choice(unlabelled, size=min(extra, len(unlabelled)), replace=False)
    return np.sort(np.concatenate([labelled, drawn]))


def choose_features(scores: dict, n_labels: int, preferred: str = PREFERRED_FEATURES) -> str:
    """``preferred`` (by default both the latents and the pixels), unless another feature set's
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


@dataclass(frozen=True)
class RefinementPlan:
    """What the refinement rounds do, resolved from a budget and the choices that override it."""
    refinement: str
    rounds: int
    epochs: int

    @property
    def folds(self) -> int:
        return REFINEMENT_FOLDS[self.refinement]

    @property
    def pools(self) -> bool:  # the fold lines' latents make the final maps; no full version is trained
        return self.refinement == "encoder"

    @property
    def trainings(self) -> int:  # per kept round: one per fold line, and the full version unless pooled
        return self.folds + (0 if self.pools else 1)

    @property
    def remaps(self) -> bool:  # the refined latents are mapped like the chosen features (UMAP)
        return self.refinement == "vae"

    @property
    def fine_tuning(self) -> dict:
        if self.refinement == "encoder":
            # The cross-entropy alone, so no weight against the ELBO; a short warm-up steadies AdamW's start.
            return {"epochs": self.epochs, "elbo": False, "amp": True, "label_weight": 1.0, "lr": 2e-3,
                    "batch_size": 256, "warmup_steps": 100}
        return {"epochs": self.epochs, "label_weight": 100.0}


def refinement_plan(budget: str = BUDGET, refinement: Optional[str] = None, refine_rounds: Optional[int] = None,
                    refine_epochs: Optional[int] = None) -> RefinementPlan:
    if budget not in BUDGETS:
        raise DataError(f"unknown budget {budget!r}: use one of {', '.join(BUDGETS)}")
    chosen = {"refinement": REFINEMENT, **BUDGETS[budget]}
    refinement = refinement or chosen["refinement"]
    if refinement not in REFINEMENTS:
        raise DataError(f"unknown refinement {refinement!r}: use one of {', '.join(REFINEMENTS)}")
    rounds = chosen["refine_rounds"] if refine_rounds is None else refine_rounds
    if rounds < 0 or (refine_epochs is not None and refine_epochs < 1):
        raise DataError(f"`refine_rounds` must be at least 0 and `refine_epochs` at least 1, got {rounds} and "
                        f"{refine_epochs}")
    return RefinementPlan(refinement, int(rounds), int(refine_epochs or REFINE_EPOCHS[refinement]))


def _refinement_blocker(refine_rounds: int, have_model: bool, chosen: str, n_judging: int,
                        refinement: str = REFINEMENT, plain_elbo: bool = True) -> str:
    if refine_rounds <= 0:
        return "refinement is off"
    if not have_model:
        return "refinement needs the model and the images"
    if not plain_elbo and refinement != "encoder":
        # Fine-tuning on the ELBO and the labels alone would drop the term the model's codes rest on;
        # the encoder refinement never runs the ELBO, and trains on the photo model's own views.
        return (f"the {refinement} refinement would fine-tune the photo model on the ELBO without its consistency "
                "term, so it is skipped (the encoder refinement is not)")
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
    ``refine_rounds`` trains a copy of the VAE on the current labels (``refinement``, or the
    ``budget``'s) and is kept only if it predicts more held-back labels correctly, each fold of the
    labels held back in turn (see :func:`propagate_labels`).

    Attributes: ``transduction_``, ``label_distributions_``, ``classes_``, ``features_`` (the
    feature set chosen by cross-validation), ``rounds_`` (one dict per round, accepted or not),
    ``n_iter_`` (refinement rounds kept), ``termination_condition_`` (why refinement stopped),
    ``model_`` (the VAE of the last kept round).
    """

    def __init__(self, vae, propagator: Optional[LabelPropagator] = None, *, features: str = FEATURES,
                 budget: str = BUDGET, refinement: Optional[str] = None, refine_rounds: Optional[int] = None,
                 refine_epochs: Optional[int] = None, device: str = "cpu", random_state: int = 0,
                 verbose: bool = False):
        self.vae = vae
        self.propagator = propagator
        self.features = features
        self.budget = budget
        self.refinement = refinement
        self.refine_rounds = refine_rounds
        self.refine_epochs = refine_epochs
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
                                  budget=self.budget, refinement=self.refinement, refine_rounds=self.refine_rounds,
                                  refine_epochs=self.refine_epochs, device=self.device, seed=self.random_state,
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
