"""``vaetools label-propagate``: a few labels in, a label for every sample out."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import click

from vae_tools.latent.defaults import (
    ENSEMBLE_LIMIT,
    ENSEMBLE_MAPS,
    FEATURE_SETS,
    FEATURES,
    GRAPH,
    GRAPHS,
    BUDGET,
    BUDGET_HELP,
    BUDGETS,
    MAPS,
    MIN_JUDGING_LABELS,
    NEIGHBORS,
    PROPAGATION_METHOD,
    PROPAGATION_METHODS,
    REDUCE,
    REFINE_EPOCHS,
    REFINEMENT_FOLDS,
    REFINEMENTS,
)
from vaetools_pipelines import common_options as common
from vaetools_pipelines.option_types import LabelAmount, parse_maps
from vaetools_pipelines.output_set import writes_output_set
from vaetools_pipelines.sections import Section, metrics_of
from vaetools_pipelines.step_api import Step, option
from vaetools_pipelines.steps import from_model
from vae_tools.latent.reducers import REDUCER_NAMES, UMAP_LIMIT


@dataclass(frozen=True)
class LabelPropagateParameters(common.LatentSource):
    labeled: float = option(None, flags=("--labelled", "--labeled"), type=LabelAmount(), metavar="SHARE|COUNT",
                            help="Evaluation mode: keep this share of the data's labels (0.02) or this many (100), "
                                 "drawn at random, and predict the rest.")
    per_class: int = option(None, type=click.IntRange(min=1), metavar="N",
                            help="Evaluation mode: keep N labels of every class (1: one label per class), drawn at "
                                 "random, and predict the rest.")
    labels_file: str = option(None, flags=("--labels",), type=click.Path(dir_okay=False), reads=True,
                              help="Real use: a CSV/Parquet table of id,label for the samples you have labelled.")
    stratify: bool = option(False, is_flag=True, help="With --labelled: spread the labels over the classes in "
                                                       "proportion to their size.")
    method: str = option(PROPAGATION_METHOD, type=click.Choice(PROPAGATION_METHODS),
                         help="spreading: label spreading over the neighbour graph; centroids: k-means seeded by the "
                              "labelled points; knn: nearest labelled neighbours.")
    n_neighbors: int = option(NEIGHBORS, flags=("--neighbors",), type=click.IntRange(min=1),
                              help="Neighbours per sample in the graph.")
    graph: str = option(GRAPH, type=click.Choice(GRAPHS), help="Edge weights: UMAP's fuzzy membership, or plain 0/1.")
    reduce: str = option(REDUCE, type=click.Choice(REDUCER_NAMES),
                         help="Build the graph on a 10-d UMAP map of the features (much more accurate on every data "
                              "set measured), on their first 10 principal components (pca), or on the features "
                              f"themselves; auto: UMAP up to {UMAP_LIMIT:,} samples (it is slow beyond).")
    features: str = option(FEATURES, type=click.Choice(FEATURE_SETS),
                           help="What the graph is built on. auto: whichever of latents, latents+pixels (principal "
                                "components) and pixels scores best in a 5-fold cross-validation on your labels; the "
                                "pixels need --data.")
    backend: str = common.umap_backend()
    n_maps: object = option(MAPS, flags=("--maps",), callback=parse_maps, metavar="auto|N",
                            help="UMAP maps of different seeds to propagate over, their results averaged, so that the "
                                 "result does not hang on one map's seed (up to a point of accuracy on small data "
                                 f"sets). auto: {ENSEMBLE_MAPS} up to {ENSEMBLE_LIMIT:,} samples, 1 beyond (each map "
                                 "costs a UMAP run).")
    budget: str = option(BUDGET, type=click.Choice(tuple(BUDGETS)),
                         help="What to trade for time (needs --model and --data beyond fast): "
                              + "; ".join(f"{name}: {text}" for name, text in BUDGET_HELP.items())
                              + ". --refinement and --refine-rounds override its choices.")
    refinement: str = option(None, type=click.Choice(REFINEMENTS), show_default="the budget's",
                             help="How a refinement round uses the propagated labels: encoder trains the VAE's "
                                  "encoder and a linear head on them (bf16 where the CPU has it); vae fine-tunes the "
                                  "whole VAE on ELBO + labels and maps it again with UMAP.")
    refine_rounds: int = option(
        None, type=click.IntRange(min=0), show_default="the budget's with --model, else 0",
        help="Rounds of training on the propagated labels, then propagating again (needs --model and --data). "
             "Each round is also run once per fold of your labels (encoder: "
             f"{REFINEMENT_FOLDS['encoder']}, vae: {REFINEMENT_FOLDS['vae']} folds) without that fold, and kept "
             "only if it then predicts more of the labels held back correctly; with fewer than "
             f"{MIN_JUDGING_LABELS} labels that cannot be judged, and it is skipped.")
    refine_epochs: int = option(None, type=click.IntRange(min=1),
                                show_default=", ".join(f"{k}: {v}" for k, v in REFINE_EPOCHS.items()),
                                help="Epochs over the data per training of a refinement round.")
    suggest: int = option(0, type=click.IntRange(min=0), metavar="N",
                          help="Also write the N unlabelled samples most worth labelling next (suggestions.csv/.png).")
    seed: int = common.seed()
    quiet: bool = common.quiet()


def report(metrics: dict, p: LabelPropagateParameters) -> list:
    accuracy = metrics.get("accuracy_unlabelled")
    scored = f"; accuracy on the unlabelled {accuracy:.2%}" if accuracy is not None else ""
    return [f"features: {metrics['choices']['features']} ({metrics['choices']['features_why']}); "
            f"refinement: {metrics['choices']['refinement']}",
            f"labelled {metrics['n_unlabelled']} samples from {metrics['n_labelled']} labels{scored}; outputs in {p.out}"]


def read_label_file(path: str | Path, ids):
    """An object array aligned with ``ids``: the file's label, or None where the file has none."""
    import numpy as np
    import pandas as pd

    from vae_tools.errors import DataError
    from vae_tools.tables import read_table

    table = read_table(path, text_columns=("id", "label"))
    if not {"id", "label"} <= set(table.columns):
        raise DataError(f"{path}: needs the columns id and label (has {', '.join(map(str, table.columns))})")
    table = table.dropna(subset=["label"])
    table = table[table["label"].astype(str).str.strip() != ""]
    if table["label"].dtype.kind == "f" and (table["label"] == table["label"].round()).all():
        table["label"] = table["label"].astype(np.int64)  # a float column only because of missing labels
    table["label"] = [canonical_label(v) for v in table["label"]]
    if table.empty:
        raise DataError(f"{path}: holds no labels")
    table["id"] = table["id"].astype(str)
    duplicated = table[table["id"].duplicated(keep=False)].groupby("id")["label"].nunique()
    if (duplicated > 1).any():
        raise DataError(f"{path}: id {duplicated[duplicated > 1].index[0]} has more than one label")
    table = table.drop_duplicates("id")
    position = pd.Series(np.arange(len(ids)), index=pd.Index(ids))
    unknown = table.loc[~table["id"].isin(position.index), "id"].tolist()
    if unknown:
        shown = ", ".join(unknown[:5]) + (" ..." if len(unknown) > 5 else "")
        raise DataError(f"{path}: {len(unknown)} id(s) are not in the data: {shown}")
    labels = np.full(len(ids), None, dtype=object)
    labels[position[table["id"]].to_numpy()] = table["label"].to_numpy()
    return labels


def canonical_label(value):
    """A label as one class whichever way it was written: " 7", "7" and "7.0" are the class 7; text
    that is no whole number ("cat", "NA", "3.5") stays as written, less surrounding spaces."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() else text


def check_two_classes(given, where: str) -> None:
    from vae_tools.errors import DataError

    classes = {str(v) for v in given if v is not None}
    if len(classes) < 2:
        raise DataError(f"{where}: the labels name {len(classes)} class{'es' if len(classes) != 1 else ''} "
                        f"({', '.join(sorted(classes)) or 'none'}); propagation needs labelled examples of at "
                        "least two classes, or every image would get the one class at full confidence")


@writes_output_set
def run(p: LabelPropagateParameters) -> dict:
    """Writes predictions.csv, metrics.json, confusion.png (truth known) and suggestions.csv/.png
    (``p.suggest`` > 0) into ``p.out``; returns the metrics."""
    import pandas as pd

    from vae_tools.atomic import write_json
    from vae_tools.errors import VaeToolsError
    from vae_tools.latent.propagation import LabelPropagator
    from vae_tools.semi_supervised import propagate_labels, refinement_plan
    from vae_tools.tables import write_table
    from vaetools_pipelines.latent_inputs import ensure_out_dir, load_latent_inputs

    if sum(v is not None for v in (p.labeled, p.per_class, p.labels_file)) != 1:
        raise VaeToolsError("give exactly one of --labelled SHARE|COUNT or --per-class N (hide the rest of the known "
                            "labels) or --labels FILE")
    refine_rounds = p.refine_rounds
    if refine_rounds is None and (p.model_dir is None or p.data is None):
        refine_rounds = 0
    plan = refinement_plan(p.budget, p.refinement, refine_rounds, p.refine_epochs)
    inputs = load_latent_inputs(p.embeddings, p.model_dir, p.data, p.split, p.device, not p.quiet,
                                need_model=plan.rounds > 0)
    given, keep = given_labels(p, inputs)
    propagator = LabelPropagator(method=p.method, n_neighbors=p.n_neighbors, graph=p.graph, reduce=p.reduce,
                                 umap_backend=p.backend, n_maps=p.n_maps, random_state=p.seed)
    out = ensure_out_dir(p.out)
    started = time.perf_counter()
    result = propagate_labels(inputs.model, inputs.dataset, given, propagator, features=p.features,
                              budget=p.budget, refinement=p.refinement, refine_rounds=refine_rounds,
                              refine_epochs=p.refine_epochs, device=inputs.device,
                              seed=p.seed, progress=not p.quiet, y_true=inputs.labels, latents=inputs.latents)
    fitted = result.propagator
    predictions = pd.DataFrame({"id": inputs.ids, "predicted_label": fitted.transduction_,
                                "confidence": fitted.confidence_.round(5), "labelled": keep})
    if inputs.labels is not None:
        predictions["true_label"] = inputs.labels
    write_table(predictions, out / "predictions.csv")
    metrics = propagation_metrics(p, result, keep, time.perf_counter() - started)
    if inputs.labels is not None:
        metrics.update(truth_metrics(inputs, given, keep, fitted, out))
    if p.suggest > 0:
        metrics["suggestions"] = write_suggestions(out, inputs, result.spaces[0], fitted, keep, p.suggest, p.seed)
    write_json(out / "metrics.json", metrics)
    return metrics


def given_labels(p: LabelPropagateParameters, inputs):
    """The labels propagation starts from (None where unknown) and which samples have one: a share
    of the data's own labels (``p.labeled``) or those of a labels file."""
    import numpy as np

    from vae_tools.errors import DataError
    from vae_tools.latent.labels import check_every_class_labelled, hide_labels, keep_per_class

    if p.labeled is not None or p.per_class is not None:
        if inputs.labels is None:
            raise DataError(f"{p.embeddings or p.data}: has no labels to hide; use --labels FILE with the labels you have")
        if p.per_class is not None:
            keep = keep_per_class(inputs.labels, p.per_class, seed=p.seed)
        else:
            keep = hide_labels(inputs.labels, p.labeled, seed=p.seed, stratify=p.stratify)
            check_every_class_labelled(inputs.labels, keep, p.labeled)
        given = np.where(keep, inputs.labels.astype(object), None)
    else:
        given = read_label_file(p.labels_file, inputs.ids)
        keep = np.array([v is not None for v in given])
    check_two_classes(given, str(p.labels_file or p.embeddings or p.data))
    if keep.all():
        raise DataError("every sample is already labelled; nothing to propagate")
    return given, keep


def propagation_metrics(p: LabelPropagateParameters, result, keep, seconds: float) -> dict:
    import pandas as pd

    fitted = result.propagator
    return {
        "n_samples": int(len(keep)), "n_labelled": int(keep.sum()), "n_unlabelled": int((~keep).sum()),
        "labelled_fraction": float(keep.mean()), "labelled_asked": p.labeled, "labelled_per_class": p.per_class,
        "labels_file": str(p.labels_file) if p.labels_file else None,
        "classes": [str(c) for c in fitted.classes_],
        "settings": {"method": p.method, "n_neighbors": p.n_neighbors, "graph": p.graph, "reduce": p.reduce,
                     "features": p.features, "umap_backend": p.backend, "maps": p.n_maps,
                     "budget": p.budget, "refinement": result.plan.refinement, "refine_rounds": result.plan.rounds,
                     "refine_epochs": result.plan.epochs,
                     "stratify": p.stratify, "seed": p.seed},
        "choices": {"features": result.features, "features_why": _features_why(result),
                    "maps": len(result.spaces), "maps_why": result.maps_note,
                    "refinement": result.refinement_note or f"{len(result.rounds) - 1} round(s) kept"},
        "feature_cv_accuracy": result.feature_scores,
        "seconds": round(seconds, 2), "rounds": result.rounds,
        "predicted_counts": {str(k): int(v) for k, v in pd.Series(fitted.transduction_[~keep]).value_counts().items()},
    }


def truth_metrics(inputs, given, keep, fitted, out) -> dict:
    """Scores on the unlabelled samples whose truth is known, the plain method's accuracy on the
    same labels beside them, and confusion.png."""
    import numpy as np

    from vae_tools.latent import baseline
    from vae_tools.latent.metrics import classification_metrics
    from vae_tools.semi_supervised import dataset_pixels
    from vaetools_pipelines.figures import confusion_figure

    # Compared as text: a labels file says "1" where the data's own labels are the integer 1.
    truth = inputs.labels[~keep].astype(str)
    scores = classification_metrics(truth, fitted.transduction_[~keep].astype(str))
    metrics = {"unlabelled": scores, "accuracy_unlabelled": scores["accuracy"]}
    if inputs.dataset is not None:
        started = time.perf_counter()
        predicted = baseline.baseline_predictions(dataset_pixels(inputs.dataset), given)
        metrics["baseline"] = {"method": baseline.describe(),
                               "accuracy_unlabelled": float(np.mean(predicted[~keep].astype(str) == truth)),
                               "seconds": round(time.perf_counter() - started, 2)}
    cm = scores["confusion_matrix"]
    confusion_figure(np.array(cm["matrix"]), cm["labels"], out / "confusion.png",
                     f"unlabelled samples: accuracy {scores['accuracy']:.2%}")
    return metrics


def _features_why(result) -> str:
    if not result.feature_scores:
        return "the only feature set available or asked for"
    ranked = ", ".join(f"{name} {score:.1%}" if score is not None else f"{name} n/a"
                       for name, score in result.feature_scores.items())
    return (f"5-fold cross-validated accuracy on the given labels ({ranked}); latents+pixels unless another "
            "set is better by more than one standard error")


def write_suggestions(out: Path, inputs, latents, fitted, keep, n: int, seed: int) -> dict:
    import numpy as np
    import pandas as pd

    from vae_tools.latent.suggest import margin_uncertainty, suggest_labels
    from vae_tools.tables import write_table
    from vaetools_pipelines.figures import thumbnail_rows
    from vaetools_pipelines.latent_inputs import images_for

    chosen = suggest_labels(latents, fitted.label_distributions_, ~keep, n, seed=seed)
    uncertainty = margin_uncertainty(fitted.label_distributions_)[chosen]
    top2 = np.argsort(-fitted.label_distributions_[chosen], axis=1)[:, :2]
    table = pd.DataFrame({
        "rank": np.arange(1, len(chosen) + 1), "id": inputs.ids[chosen], "uncertainty": np.round(uncertainty, 4),
        "predicted_label": fitted.classes_[top2[:, 0]],
        "second_label": fitted.classes_[top2[:, 1]] if top2.shape[1] > 1 else None,
    })
    write_table(table, out / "suggestions.csv")
    written = {"n": int(len(chosen)), "table": "suggestions.csv"}
    images = images_for(inputs, chosen)
    if images is not None and len(chosen):
        captions = [f"{i}\n{p} or {s}?" for i, p, s in zip(table["id"], table["predicted_label"], table["second_label"])]
        rows = [(f"{i + 1}-{min(i + 10, len(chosen))}", images[i:i + 10], captions[i:i + 10])
                for i in range(0, len(chosen), 10)]
        thumbnail_rows(rows, out / "suggestions.png", title="label these next (most useful first)", max_columns=10)
        written["sheet"] = "suggestions.png"
    return written


def section(run: Path) -> Section:
    metrics = metrics_of(run, STEP.name)
    section = Section("Label propagation")
    if metrics:
        section.sentences.append(f"{metrics['n_labelled']} images had labels; {metrics['n_unlabelled']} were "
                                 f"given one. Features: {metrics['choices']['features']} "
                                 f"({metrics['choices']['features_why']}). Refinement: "
                                 f"{metrics['choices']['refinement']}.")
        if "maps" in metrics["choices"]:
            section.sentences.append(f"Maps averaged: {metrics['choices']['maps']} "
                                     f"({metrics['choices']['maps_why']}).")
    if metrics.get("accuracy_unlabelled") is not None:
        matrix = metrics["unlabelled"]["confusion_matrix"]["matrix"]
        totals = [sum(row) for row in matrix]
        chance = max(totals) / max(1, sum(totals))
        text = (f"Accuracy on the images whose labels were hidden, against those labels: "
                f"{metrics['accuracy_unlabelled']:.1%}")
        if metrics.get("baseline"):
            text += (f"; a plain method on the same labels ({metrics['baseline']['method']}) gets "
                     f"{metrics['baseline']['accuracy_unlabelled']:.1%}")
        section.sentences.append(text + f"; always guessing the commonest label would get {chance:.1%}.")
        section.figures.append((run / STEP.output / "confusion.png", "Confusion matrix of the images whose labels "
                                "were hidden: a row per true label, a column per predicted one; the diagonal is "
                                "right, every other cell a kind of mistake.", "560px"))
    section.figures.append((run / STEP.output / "suggestions.png", "The unlabelled images whose label is least "
                            "certain and that stand for many others: labelling these first helps most.", "100%"))
    return section


def key_figures(run: Path) -> list:
    labels = metrics_of(run, STEP.name)
    figures = []
    if labels:
        figures.append(("labels given / predicted", f"{labels['n_labelled']} / {labels['n_unlabelled']}"))
        if labels.get("accuracy_unlabelled") is not None:
            text = f"{labels['accuracy_unlabelled']:.2%}"
            if labels.get("baseline"):
                text += f" (plain baseline, {labels['baseline']['method']}: {labels['baseline']['accuracy_unlabelled']:.2%})"
            figures.append(("label accuracy on the unlabelled", text))
    return figures


STEP = Step(
    name="label-propagate", section=section, key_figures=key_figures, parameters=LabelPropagateParameters, run=run, report=report, output="labels",
    supplies=from_model, needs=("train",),
    help="""Predict a label for every sample from a few labelled ones.

    Writes predictions.csv (id, predicted_label, confidence, labelled, true_label when known),
    metrics.json (accuracy on the unlabelled, per-class accuracy, macro F1, confusion matrix) and
    confusion.png when the truth is known.
    """)
