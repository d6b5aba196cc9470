"""``vaetools label-propagate``: a few labels in, a label for every sample out."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from vaetools_pipelines.figures import confusion_figure, thumbnail_rows
from vaetools_pipelines.latent_inputs import ensure_out_dir, images_for, load_latent_inputs
from vaetools_pipelines.output_set import writes_output_set
from vae_tools.atomic import write_json
from vae_tools.errors import DataError, VaeToolsError
from vae_tools.latent import baseline
from vae_tools.latent.labels import check_every_class_labelled, hide_labels
from vae_tools.latent.metrics import classification_metrics
from vae_tools.latent.propagation import LabelPropagator
from vae_tools.latent.suggest import margin_uncertainty, suggest_labels
from vae_tools.latent.defaults import FEATURES, MAPS, REDUCE, REFINE_EPOCHS, REFINE_ROUNDS, UMAP_BACKEND
from vae_tools.semi_supervised import dataset_pixels, propagate_labels
from vae_tools.tables import read_table, write_table


def read_label_file(path: str | Path, ids: np.ndarray) -> np.ndarray:
    """An object array aligned with ``ids``: the file's label, or None where the file has none."""
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


def check_two_classes(given: np.ndarray, where: str) -> None:
    classes = {str(v) for v in given if v is not None}
    if len(classes) < 2:
        raise DataError(f"{where}: the labels name {len(classes)} class{'es' if len(classes) != 1 else ''} "
                        f"({', '.join(sorted(classes)) or 'none'}); propagation needs labelled examples of at "
                        "least two classes, or every image would get the one class at full confidence")


@writes_output_set
def run_label_propagate(
    out: str | Path,
    embeddings: Optional[str] = None,
    model_dir: Optional[str] = None,
    data: Optional[str] = None,
    labeled: Optional[float] = None,
    labels_file: Optional[str] = None,
    stratify: bool = False,
    method: str = "spreading",
    n_neighbors: int = 15,
    graph: str = "umap",
    reduce: str = REDUCE,
    features: str = FEATURES,
    backend: str = UMAP_BACKEND,
    n_maps=MAPS,
    refine_rounds: Optional[int] = None,
    refine_epochs: int = REFINE_EPOCHS,
    suggest: int = 0,
    split: str = "all",
    device: str = "auto",
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Writes predictions.csv, metrics.json, confusion.png (truth known) and suggestions.csv/.png
    (``suggest`` > 0) into ``out``; returns the metrics."""
    if (labeled is None) == (labels_file is None):
        raise VaeToolsError("give exactly one of --labelled FRACTION (hide the rest of the known labels) or --labels FILE")
    if labeled is not None and not 0 < labeled < 1:
        raise DataError(f"--labelled must lie strictly between 0 and 1, got {labeled}")
    if refine_rounds is None:
        refine_rounds = REFINE_ROUNDS if model_dir is not None and data is not None else 0
    inputs = load_latent_inputs(embeddings, model_dir, data, split, device, progress, need_model=refine_rounds > 0)
    if labeled is not None:
        if inputs.labels is None:
            raise DataError(f"{embeddings or data}: has no labels to hide; use --labels FILE with the labels you have")
        keep = hide_labels(inputs.labels, labeled, seed=seed, stratify=stratify)
        check_every_class_labelled(inputs.labels, keep, labeled)
        given = np.where(keep, inputs.labels.astype(object), None)
    else:
        given = read_label_file(labels_file, inputs.ids)
        keep = np.array([v is not None for v in given])
    check_two_classes(given, str(labels_file or embeddings or data))
    if keep.all():
        raise DataError("every sample is already labelled; nothing to propagate")
    propagator = LabelPropagator(method=method, n_neighbors=n_neighbors, graph=graph, reduce=reduce,
                                 umap_backend=backend, n_maps=n_maps, random_state=seed)
    out = ensure_out_dir(out)
    started = time.perf_counter()
    result = propagate_labels(inputs.model, inputs.dataset, given, propagator, features=features,
                              refine_rounds=refine_rounds, refine_epochs=refine_epochs, device=inputs.device,
                              seed=seed, progress=progress, y_true=inputs.labels, latents=inputs.latents)
    fitted = result.propagator
    seconds = time.perf_counter() - started

    predictions = pd.DataFrame({
        "id": inputs.ids,
        "predicted_label": fitted.transduction_,
        "confidence": np.round(fitted.confidence_, 5),
        "labelled": keep,
    })
    if inputs.labels is not None:
        predictions["true_label"] = inputs.labels
    write_table(predictions, out / "predictions.csv")

    metrics = {
        "n_samples": int(len(keep)), "n_labelled": int(keep.sum()), "n_unlabelled": int((~keep).sum()),
        "labelled_fraction": labeled, "labels_file": str(labels_file) if labels_file else None,
        "classes": [str(c) for c in fitted.classes_],
        "settings": {"method": method, "n_neighbors": n_neighbors, "graph": graph, "reduce": reduce,
                     "features": features, "umap_backend": backend, "maps": n_maps,
                     "refine_rounds": refine_rounds, "refine_epochs": refine_epochs,
                     "stratify": stratify, "seed": seed},
        "choices": {"features": result.features, "features_why": _features_why(result),
                    "maps": len(result.spaces), "maps_why": result.maps_note,
                    "refinement": result.refinement_note or f"{len(result.rounds) - 1} round(s) kept"},
        "feature_cv_accuracy": result.feature_scores,
        "seconds": round(seconds, 2), "rounds": result.rounds,
        "predicted_counts": {str(k): int(v) for k, v in pd.Series(fitted.transduction_[~keep]).value_counts().items()},
    }
    if inputs.labels is not None:
        # Compared as text: a labels file says "1" where the data's own labels are the integer 1.
        scores = classification_metrics(inputs.labels[~keep].astype(str), fitted.transduction_[~keep].astype(str))
        metrics["unlabelled"] = scores
        metrics["accuracy_unlabelled"] = scores["accuracy"]
        if inputs.dataset is not None:  # the plain method's accuracy on the same labels, for comparison
            predicted = baseline.baseline_predictions(dataset_pixels(inputs.dataset), given)
            metrics["baseline"] = {"method": baseline.describe(), "accuracy_unlabelled": float(np.mean(
                predicted[~keep].astype(str) == inputs.labels[~keep].astype(str)))}
        cm = scores["confusion_matrix"]
        confusion_figure(np.array(cm["matrix"]), cm["labels"], out / "confusion.png",
                         f"unlabelled samples: accuracy {scores['accuracy']:.2%}")
    if suggest > 0:
        metrics["suggestions"] = write_suggestions(out, inputs, result.spaces[0], fitted, keep, suggest, seed)
    write_json(out / "metrics.json", metrics)
    return metrics


def _features_why(result) -> str:
    if not result.feature_scores:
        return "the only feature set available or asked for"
    ranked = ", ".join(f"{name} {score:.1%}" if score is not None else f"{name} n/a"
                       for name, score in result.feature_scores.items())
    return (f"5-fold cross-validated accuracy on the given labels ({ranked}); latents+pixels unless another "
            "set is better by more than one standard error")


def write_suggestions(out: Path, inputs, latents, fitted, keep, n: int, seed: int) -> dict:
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
