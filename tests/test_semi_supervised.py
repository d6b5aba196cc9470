"""Feature choice by cross-validation and the guard that keeps a refinement round only when the
held-back labels say it helped."""

import copy
import re
import dataclasses

import numpy as np
import pytest
import torch

import vae_tools.semi_supervised as semi
from conftest import make_images
from vae_tools.config import TrainConfig
from vae_tools.data import ImageDataset
from vae_tools.data.arrays import ArrayReader
from vae_tools.errors import DataError
from vae_tools.latent.defaults import JUDGE_FOLDS
from vae_tools.latent.labels import hide_labels
from vae_tools.latent.validation import cross_validated_accuracy, labelled_folds, without_labels
from vae_tools.training import train
from vae_tools.training.trainer import build_model


@pytest.fixture(scope="module")
def bars():
    images, labels = make_images(n=160, size=12, seed=3)
    dataset = ImageDataset(ArrayReader(images, "bars"), np.arange(len(images)).astype(str), labels)
    config = TrainConfig(epochs=25, batch_size=16, latent_dim=4, hidden_dim=32, widths=[8, 16], device="cpu")
    trained = train(dataset, config, progress=False).model
    torch.manual_seed(0)
    untrained = build_model(dataclasses.replace(config, likelihood=trained.likelihood, model=trained.registry_name),
                            dataset.shape).eval()
    keep = hide_labels(labels, 0.5, seed=0, stratify=True)
    return dataset, labels, np.where(keep, labels, -1), trained, untrained


def scramble(model, *args, **kwargs):
    """A 'fine-tuning' that wrecks the encoder: its latents become noise, whatever the image."""
    generator = torch.Generator().manual_seed(0)

    def noise(x):
        mu = torch.randn(len(x), model.latent_dim, generator=generator)
        return mu, torch.zeros_like(mu)

    model.encode = noise
    return model


def test_a_round_that_lowers_held_back_accuracy_is_dropped(bars, monkeypatch):
    dataset, labels, given, trained, _ = bars
    monkeypatch.setattr(semi, "MIN_JUDGING_LABELS", 10)  # the bars give 80 labels: judge them as if that were enough
    monkeypatch.setattr(semi, "fine_tune_on_labels", scramble)
    result = semi.propagate_labels(trained, dataset, given, features="latents", refine_rounds=2, progress=False,
                                   y_true=labels)
    first, second = result.rounds
    assert first["accepted"] and not second["accepted"]
    assert second["held_back_correct"] < first["held_back_correct"]
    # The case is real: the dropped round would have lowered the accuracy on the unlabelled samples.
    assert second["accuracy_unlabelled"] < first["accuracy_unlabelled"] - 0.1
    hidden = given == -1
    final = np.mean(result.propagator.transduction_[hidden] == labels[hidden])
    assert final == pytest.approx(first["accuracy_unlabelled"])
    assert result.model is trained and "dropped" in result.refinement_note
    assert len(result.rounds) == 2  # refinement stops at the first rejected round


def test_a_round_that_helps_is_kept(bars, monkeypatch):
    dataset, labels, given, trained, _ = bars
    monkeypatch.setattr(semi, "MIN_JUDGING_LABELS", 10)
    start = scramble(copy.deepcopy(trained))  # its latents are noise: round 0 guesses

    def learn(model, *args, **kwargs):  # a 'fine-tuning' that gives the model the trained encoder
        vars(model).pop("encode", None)
        model.load_state_dict(trained.state_dict())
        return model

    monkeypatch.setattr(semi, "fine_tune_on_labels", learn)
    result = semi.propagate_labels(start, dataset, given, features="latents", refine_rounds=1, progress=False,
                                   y_true=labels)
    assert [r["accepted"] for r in result.rounds] == [True, True]
    assert result.rounds[1]["held_back_correct"] > result.rounds[0]["held_back_correct"]
    assert result.model is not start


def test_too_few_labels_skip_refinement_and_say_so(bars):
    dataset, labels, given, trained, _ = bars
    result = semi.propagate_labels(trained, dataset, given, features="latents", refine_rounds=2, progress=False)
    assert len(result.rounds) == 1 and result.rounds[0]["held_back"] == 0
    assert "too few labels" in result.refinement_note and "(80 given, 100 needed" in result.refinement_note


def test_auto_features_pick_the_pixels_over_a_useless_encoder(bars):
    dataset, labels, given, _, untrained = bars
    result = semi.propagate_labels(untrained, dataset, given, refine_rounds=0, progress=False)
    assert set(result.feature_scores) == {"latents", "latents+pixels", "pixels"}
    assert result.features != "latents"
    assert result.features == semi.choose_features(result.feature_scores, int((given != -1).sum()))
    hidden = given == -1
    assert np.mean(result.propagator.transduction_[hidden] == labels[hidden]) > 0.9


def test_cross_validation_and_judging_folds_use_only_given_labels():
    rng = np.random.default_rng(0)
    x = np.r_[rng.normal(0, 0.3, (50, 2)), rng.normal(5, 0.3, (50, 2))].astype(np.float32)
    y = np.repeat([0, 1], 50)
    given = np.where(hide_labels(y, 0.2, seed=1, stratify=True), y, -1)
    from vae_tools.latent.propagation import LabelPropagator

    assert cross_validated_accuracy(LabelPropagator(reduce="none", n_neighbors=5), x, given) == 1.0
    folds = labelled_folds(given, JUDGE_FOLDS, seed=0)
    assert len(folds) == 4 and all(set(given[fold]) == {0, 1} for fold in folds)  # stratified
    assert sorted(np.concatenate(folds)) == list(np.flatnonzero(given >= 0))  # each given label once
    assert (without_labels(given, folds[0])[folds[0]] == -1).all()
    strings = np.array(["a", None, "b", "a"], dtype=object)
    assert list(without_labels(strings, [0])) == [None, None, "b", "a"]


def test_feature_choice_keeps_the_combined_set_unless_another_is_clearly_better():
    assert semi.choose_features({"latents": 0.90, "latents+pixels": 0.89, "pixels": 0.85}, 200) == "latents+pixels"
    assert semi.choose_features({"latents": 0.97, "latents+pixels": 0.89, "pixels": 0.85}, 200) == "latents"
    assert semi.choose_features({"latents": 0.5, "latents+pixels": 0.6, "pixels": 0.99}, 100) == "pixels"
    assert semi.choose_features({"latents": 0.8}, 200) == "latents"


def test_reduce_auto_uses_umap_up_to_its_limit_only():
    from vae_tools.latent.reducers import UMAP_LIMIT, effective_reduce

    assert effective_reduce("auto", 10_000) == "umap"
    assert effective_reduce("auto", UMAP_LIMIT + 1) == "none"
    assert effective_reduce("umap", UMAP_LIMIT + 1) == "umap"


def test_a_round_that_changes_nothing_is_not_kept(bars, monkeypatch):
    dataset, labels, given, trained, _ = bars
    monkeypatch.setattr(semi, "MIN_JUDGING_LABELS", 10)
    monkeypatch.setattr(semi, "fine_tune_on_labels", lambda model, *a, **k: model)
    result = semi.propagate_labels(trained, dataset, given, features="latents", refine_rounds=2, progress=False)
    first, second = result.rounds
    assert second["held_back_correct"] == first["held_back_correct"]
    assert second["held_back_true_class_probability"] == first["held_back_true_class_probability"]
    assert not second["accepted"] and result.model is trained


def test_only_more_correct_held_back_labels_make_a_round_better():
    from types import SimpleNamespace

    from vae_tools.latent.validation import held_back_true_probability

    y = np.array([0, 1, 1, 0, -1])
    held = np.array([0, 1, 2, 3])

    def fitted(p_true, predicted=(0, 1, 1, 0, 0)):  # p_true: probability of each held-back sample's true class
        dist = np.array([[p, 1 - p] if t == 0 else [1 - p, p] for p, t in zip(p_true, y[held])] + [[0.5, 0.5]])
        return SimpleNamespace(classes_=np.array([0, 1]), transduction_=np.array(predicted), label_distributions_=dist)

    def score(*fits):  # one fitted propagation per fold of ``held``
        folds = np.array_split(held, len(fits))
        return semi._judged_score([SimpleNamespace(fitted=f) for f in fits], folds, y)

    before = score(fitted([0.6, 0.6, 0.6, 0.6]))
    assert before.correct == 4 and before.mean_probability == pytest.approx(0.6)
    sharper = score(fitted([0.9, 0.9, 0.9, 0.9]))
    assert not sharper.beats(before)  # more confidence in the same answers is not a better round
    fewer = score(fitted([0.4, 0.9, 0.9, 0.9], predicted=(1, 1, 1, 0, 0)))
    assert fewer.correct == 3 and before.beats(fewer) and not fewer.beats(before)
    # Over two folds each fold is scored on its own propagation: the first fold's one error counts,
    # the second fold's propagation is right on its own labels.
    split = score(fitted([0.4, 0.9, 0.9, 0.9], predicted=(1, 1, 1, 0, 0)), fitted([0.6, 0.6, 0.7, 0.7]))
    assert split.correct == 3 and split.mean_probability == pytest.approx((0.4 + 0.9 + 0.7 + 0.7) / 4)
    unseen = SimpleNamespace(classes_=np.array([0]), transduction_=np.zeros(5, int), label_distributions_=np.ones((5, 1)))
    assert list(held_back_true_probability(unseen, y, held)) == [1.0, 0.0, 0.0, 1.0]


def test_self_training_as_a_scikit_learn_meta_estimator(bars):
    from sklearn.base import clone

    from vae_tools import SelfTrainingPropagator
    from vae_tools.latent import LabelPropagator

    dataset, labels, given, trained, _ = bars
    images = dataset.batch(np.arange(len(dataset))).numpy()
    estimator = SelfTrainingPropagator(trained, LabelPropagator(n_neighbors=8), features="latents", refine_rounds=0)
    assert clone(estimator).get_params()["features"] == "latents"
    with pytest.raises(TypeError):
        SelfTrainingPropagator(trained, None, "latents")  # options are keyword-only, as in scikit-learn
    fitted = estimator.fit(images, given)
    assert fitted is estimator and fitted.transduction_.shape == (160,)
    assert fitted.label_distributions_.shape == (160, 2) and list(fitted.classes_) == [0, 1]
    hidden = given == -1
    assert np.mean(fitted.transduction_[hidden] == labels[hidden]) > 0.9
    assert fitted.n_iter_ == 0 and len(fitted.rounds_) == 1 and fitted.termination_condition_ == "refinement is off"
    assert fitted.model_ is trained and fitted.features_ == "latents"
    with pytest.raises(DataError, match="holds 3 labels for 160 images"):
        estimator.fit(images, given[:3])


@pytest.mark.parametrize("refinement", ["encoder", "vae"])
def test_every_given_label_judges_a_round_through_one_fine_tuning_per_fold(bars, monkeypatch, refinement):
    dataset, labels, given, trained, _ = bars
    monkeypatch.setattr(semi, "MIN_JUDGING_LABELS", 10)
    tuned = []

    def unchanged(model, *args, **kwargs):  # a 'fine-tuning' that only counts
        tuned.append(kwargs)
        return model

    monkeypatch.setattr(semi, "fine_tune_on_labels", unchanged)
    result = semi.propagate_labels(trained, dataset, given, features="latents", refinement=refinement,
                                   refine_rounds=1, progress=False)
    n_given = int((given != -1).sum())
    folds = semi.REFINEMENT_FOLDS[refinement]
    assert [r["held_back"] for r in result.rounds] == [n_given, n_given]
    assert len(tuned) == folds  # the dropped round's full version is not built outside evaluation
    assert all(kwargs["elbo"] is False for kwargs in tuned) if refinement == "encoder" else \
        all("elbo" not in kwargs for kwargs in tuned)
    tuned.clear()
    semi.propagate_labels(trained, dataset, given, features="latents", refinement=refinement, refine_rounds=1,
                          progress=False, y_true=labels)
    # In evaluation mode the dropped round is built to be scored: "vae" fine-tunes a full version for
    # it, "encoder" pools the fold lines it already has.
    assert len(tuned) == folds + (refinement == "vae")


@pytest.mark.parametrize("refinement", ["encoder", "vae"])
def test_a_folds_line_of_rounds_never_learns_that_folds_labels(bars, monkeypatch, refinement):
    dataset, labels, given, trained, _ = bars
    monkeypatch.setattr(semi, "MIN_JUDGING_LABELS", 10)
    start = scramble(copy.deepcopy(trained))  # noise latents: a label a line was not given is a guess
    targets = []

    def record(model, dataset, codes, *args, **kwargs):
        targets.append(np.asarray(codes))
        return model

    monkeypatch.setattr(semi, "fine_tune_on_labels", record)
    semi.propagate_labels(start, dataset, given, features="latents", refinement=refinement, refine_rounds=1,
                          progress=False, y_true=labels)
    labelled = np.flatnonzero(given != -1)
    folds = labelled_folds(given, semi.REFINEMENT_FOLDS[refinement], seed=0)
    fold_targets = targets[:len(folds)]
    for fold, codes in zip(folds, fold_targets):
        others = np.setdiff1d(labelled, fold)
        assert (codes[others] == given[others]).all()  # taught the labels outside its fold
        assert (codes[fold] != given[fold]).any()  # and only guesses at its own fold's
    if refinement == "vae":
        assert len(targets) == len(folds) + 1 and (targets[-1][labelled] == given[labelled]).all()
    else:
        assert len(targets) == len(folds)  # the result pools the fold lines: no training saw every label


def test_a_budget_names_the_refinement_and_an_explicit_choice_overrides_it():
    from vae_tools.latent.defaults import BUDGETS, REFINE_EPOCHS

    assert semi.refinement_plan("fast").rounds == 0
    balanced = semi.refinement_plan("balanced")
    assert (balanced.refinement, balanced.rounds, balanced.epochs) == ("encoder", BUDGETS["balanced"]["refine_rounds"],
                                                                        REFINE_EPOCHS["encoder"])
    best = semi.refinement_plan("best")
    assert (best.refinement, best.rounds, best.epochs, best.folds) == ("vae", 2, REFINE_EPOCHS["vae"], JUDGE_FOLDS)
    assert best.remaps and not best.pools and balanced.pools and not balanced.remaps
    mixed = semi.refinement_plan("fast", refinement="vae", refine_rounds=3, refine_epochs=1)
    assert (mixed.refinement, mixed.rounds, mixed.epochs) == ("vae", 3, 1)
    with pytest.raises(DataError, match="unknown budget 'quick': use one of fast, balanced, best"):
        semi.refinement_plan("quick")
    with pytest.raises(DataError, match="unknown refinement 'head'"):
        semi.refinement_plan(refinement="head")


def test_the_encoder_refinement_trains_the_encoder_and_leaves_the_decoder(bars):
    from vae_tools.training.label_fine_tune import fine_tune_on_labels

    dataset, labels, given, trained, _ = bars
    model = copy.deepcopy(trained)
    before = {name: value.clone() for name, value in model.state_dict().items()}
    targets = np.searchsorted(np.unique(labels), labels)
    fine_tune_on_labels(model, dataset, targets, np.ones(len(labels)), 2, epochs=2, elbo=False, amp=True,
                        label_weight=1.0, progress=False)
    changed = {name for name, value in model.state_dict().items() if not torch.equal(value, before[name])}
    assert any(name.startswith("encoder") for name in changed) and "to_mu.weight" in changed
    assert not any(name.startswith(("decoder", "from_latent", "log_sigma", "to_logvar")) for name in changed), sorted(changed)


def test_a_map_fitted_again_with_other_labels_reuses_its_graph():
    from vae_tools.latent import propagation

    rng = np.random.default_rng(0)
    space = rng.normal(size=(200, 3)).astype(np.float32)
    first = propagation.spreading_graph(space, 10, "umap", "auto", 0)
    assert propagation.spreading_graph(space.copy(), 10, "umap", "auto", 0) is first  # by content, not identity
    other = space.copy()
    other[0, 0] += 1
    assert propagation.spreading_graph(other, 10, "umap", "auto", 0) is not first
    assert propagation.spreading_graph(space, 5, "umap", "auto", 0) is not first
    for k in range(propagation.GRAPHS_KEPT + 1):
        propagation.spreading_graph(space + k + 1, 10, "umap", "auto", 0)
    assert len(propagation._GRAPHS) == propagation.GRAPHS_KEPT  # only the last few are kept


def test_the_plan_and_its_estimate_come_before_the_work(bars, capsys):
    dataset, labels, given, trained, _ = bars
    semi.propagate_labels(trained, dataset, given, features="auto", refine_rounds=1, progress=True)
    lines = capsys.readouterr().err.splitlines()
    plan = next(line for line in lines if line.startswith("plan: "))
    assert lines.index(plan) < next(i for i, line in enumerate(lines) if line.startswith("round 0 done in"))
    assert "plan: 160 samples; rank 3 feature sets (latents, latents+pixels, pixels)" in plan
    assert "up to 1 refinement round(s) (encoder): 2 trainings of 3 epochs each" in plan
    assert re.search(r"About \d+ ?(s|min) in all", plan)
    assert "too few labels" in lines[-1]  # 80 labels cannot judge a round: said when round 0 is done
    text = semi.plan_note(70_000, ["latents"], semi.LabelPropagator(n_maps=1), 16, semi.refinement_plan("best"),
                          embed_seconds=5.0)
    assert "1 UMAP map(s)" in text and "(vae): 5 trainings of 4 epochs" in text


def test_the_estimate_is_timed_on_the_data_when_the_caller_embedded_it(bars, capsys, monkeypatch):
    dataset, labels, given, trained, _ = bars
    assert semi.embedding_seconds(trained, dataset, "cpu") > 0
    latents = semi.latent_matrix(semi.embed(trained, dataset))
    monkeypatch.setattr(semi, "embedding_seconds", lambda model, data, device: 100.0)
    semi.propagate_labels(trained, dataset, given, features="latents", refine_rounds=1, latents=latents)
    plan = next(line for line in capsys.readouterr().err.splitlines() if line.startswith("plan: "))
    # one round of two 3-epoch encoder trainings at 1.5 embedding passes an epoch, each then embedding once
    amount, unit = re.search(r"About (\d+) ?(s|min) in all", plan).groups()
    assert int(amount) * (60 if unit == "min" else 1) >= 100 + 2 * (3 * 1.5 * 100 + 100) - 30
