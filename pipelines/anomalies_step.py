"""``vaetools anomalies``: rank images by how badly the VAE explains them, and report the worst."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

from pipelines.anomaly_report import write_report
from pipelines.figures import thumbnail_rows
from pipelines.latent_inputs import ensure_out_dir
from pipelines.run_inputs import load_model_and_data
from pipelines.output_set import writes_output_set
from vae_tools.anomaly.defaults import SAMPLES, SCORE, SCORES
from vae_tools.anomaly.scores import all_scores
from vae_tools.anomaly.threshold import choose_threshold
from vae_tools.atomic import write_json
from vae_tools.errors import DataError
from vae_tools.tables import write_table

PART_COLUMNS = ("complexity", "iwae", "elbo", "recon", "kl", "latent", "background")


def ground_truth(labels: Optional[np.ndarray], normal_labels: Sequence[str], anomaly_labels: Sequence[str],
                 source: str) -> Optional[np.ndarray]:
    """1 for a true anomaly, from --normal-labels (everything else is anomalous) or --anomaly-labels."""
    if not normal_labels and not anomaly_labels:
        return None
    if normal_labels and anomaly_labels:
        raise DataError("give --normal-labels or --anomaly-labels, not both")
    if labels is None:
        raise DataError(f"{source}: has no labels, so --normal-labels / --anomaly-labels cannot be applied")
    text = np.asarray(labels).astype(str)
    chosen = set(normal_labels or anomaly_labels)
    unknown = chosen - set(text)
    if unknown:
        raise DataError(f"{source}: no image has the label(s) {', '.join(sorted(unknown))}")
    member = np.isin(text, list(chosen))
    return (~member if normal_labels else member).astype(int)


def truth_metrics(truth: np.ndarray, scores: np.ndarray, flagged: np.ndarray) -> dict:
    metrics = {"n_true_anomalies": int(truth.sum()), "n_flagged": int(flagged.sum()),
               "true_positives": int((flagged & (truth == 1)).sum()),
               "false_positives": int((flagged & (truth == 0)).sum())}
    if 0 < truth.sum() < len(truth):
        metrics.update({"auroc": float(roc_auc_score(truth, scores)),
                        "average_precision": float(average_precision_score(truth, scores)),
                        "f1_at_threshold": float(f1_score(truth, flagged.astype(int), zero_division=0))})
    else:
        which = "no anomalies" if truth.sum() == 0 else "only anomalies"
        metrics.update({"auroc": None, "average_precision": None, "f1_at_threshold": None,
                        "note": f"the ground truth holds {which}, so AUROC and AP are undefined"})
    return metrics


def with_planted(dataset, n: int, seed: int):
    """The data followed by ``n`` planted outliers (held in memory); returns it and the planted mask."""
    from vae_tools.anomaly.planted import planted_outliers
    from vae_tools.data import ImageDataset
    from vae_tools.data.arrays import ArrayReader

    images = dataset.batch(np.arange(len(dataset))).numpy()
    outliers, kinds = planted_outliers(images, n, seed)
    ids = [f"planted-{kind}-{k:04d}" for k, kind in enumerate(kinds)]
    clash = set(ids) & set(dataset.ids.astype(str))
    if clash:
        raise DataError(f"{dataset.name}: already has an image with the id {sorted(clash)[0]!r}, which --plant uses")
    labels = None
    if dataset.has_labels:
        labels = np.concatenate([np.asarray(dataset.labels).astype(str), np.full(n, "planted")]).astype(object)
    combined = ImageDataset(ArrayReader(np.concatenate([images, outliers]), dataset.name),
                            [*dataset.ids.astype(str), *ids], labels, dataset.shape[0], tuple(dataset.shape[1:]))
    return combined, np.arange(len(combined)) >= len(dataset)


def planted_metrics(planted: np.ndarray, scores: np.ndarray, flagged: np.ndarray) -> dict:
    return {"n": int(planted.sum()), "flagged": int(flagged[planted].sum()),
            "auroc_against_the_data": float(roc_auc_score(planted, scores)),
            "note": "synthetic outliers (inverted copies of images and uniform noise) added to the data as a check; "
                    "the threshold is set on the data alone"}


@writes_output_set
def run_anomalies(
    model_dir: str | Path,
    data: str,
    out: str | Path,
    score: str = SCORE,
    samples: int = SAMPLES,
    contamination: Optional[float] = None,
    percentile: Optional[float] = None,
    threshold: Optional[float] = None,
    normal_labels: Sequence[str] = (),
    anomaly_labels: Sequence[str] = (),
    top: int = 24,
    plant: int = 0,
    split: str = "all",
    batch_size: int = 256,
    device: str = "auto",
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Writes anomalies.csv and .parquet, metrics.json, top_anomalies.png and report.html into ``out``."""
    if score not in SCORES:
        raise DataError(f"unknown score {score!r}: use one of {', '.join(SCORES)}")
    model, dataset, torch_device = load_model_and_data(model_dir, data, split, device)
    if len(dataset) < 2:
        raise DataError(f"{data}: holds {len(dataset)} image; anomaly scores rank images against each other, "
                        "so give at least 2")
    truth = ground_truth(dataset.labels, [str(v) for v in normal_labels], [str(v) for v in anomaly_labels], data)
    planted = np.zeros(len(dataset), dtype=bool)
    if plant:
        dataset, planted = with_planted(dataset, plant, seed)
        truth = None if truth is None else np.concatenate([truth, np.ones(plant, dtype=truth.dtype)])
    parts, _ = all_scores(model, dataset, samples=samples, batch_size=batch_size, device=torch_device, seed=seed,
                          progress=progress)
    scores = parts[score].to_numpy()
    cut = choose_threshold(scores[~planted], contamination, percentile, threshold)
    flagged = scores > cut.value
    order = np.argsort(-scores, kind="stable")
    rank = np.empty(len(scores), dtype=np.int64)
    rank[order] = np.arange(1, len(scores) + 1)

    table = pd.DataFrame({"id": dataset.ids.astype(str), "score": scores, "rank": rank, "is_anomaly": flagged})
    if dataset.has_labels:
        table["label"] = dataset.labels
    if truth is not None:
        table["true_anomaly"] = truth.astype(bool)
    if plant:
        table["planted"] = planted
    for column in PART_COLUMNS:
        table[column] = parts[column].to_numpy()
    table = table.sort_values("rank", kind="stable").reset_index(drop=True)

    out = ensure_out_dir(out)
    write_table(table, out / "anomalies.csv")
    write_table(table, out / "anomalies.parquet")
    metrics = {"score": score, "samples": samples, "n_images": int((~planted).sum()),
               "n_anomalies": int(flagged[~planted].sum()),
               "threshold": cut.to_dict(), "model": str(model_dir), "data": str(data)}
    if truth is not None:
        metrics["truth"] = truth_metrics(truth, scores, flagged)
        metrics["truth"]["normal_labels" if normal_labels else "anomaly_labels"] = list(normal_labels or anomaly_labels)
    if plant:
        metrics["planted"] = planted_metrics(planted, scores, flagged)

    shown = order[: min(top, len(order))]
    images = dataset.batch(shown).numpy() if len(shown) else np.zeros((0, *dataset.shape), np.float32)
    with torch.no_grad():
        recons = model.reconstruct(torch.from_numpy(images).to(torch_device)).float().clamp(0, 1).cpu().numpy()
    differences = np.abs(images - recons).max(axis=1, keepdims=True)
    labels = [("planted" if planted[p] else (dataset.labels[p] if dataset.has_labels else "")) for p in shown]
    columns = min(12, max(1, len(shown)))
    captions = [f"#{i + 1} {labels[i]}\n{scores[p]:.4g}" if str(labels[i]) else f"#{i + 1}\n{scores[p]:.4g}"
                for i, p in enumerate(shown)]
    thumbnail_rows([("image", images[:columns], captions[:columns]), ("reconstruction", recons[:columns], [""] * columns),
                    ("difference", differences[:columns], [""] * columns)], out / "top_anomalies.png",
                   title=f"highest {score} scores (rank, label, score above each image)", max_columns=columns)
    write_json(out / "metrics.json", metrics)
    summary = {"data": data, "model": str(model_dir), "images": int((~planted).sum()), "score": score,
               "Monte Carlo samples": samples, "threshold": f"{cut.value:.6g} ({cut.method}"
               + (f" {cut.parameter}" if cut.parameter is not None else "") + ")",
               "flagged as anomalies": f"{int(flagged[~planted].sum())} ({flagged[~planted].mean():.2%})"}
    if plant:
        summary["planted outliers (a check)"] = f"{metrics['planted']['flagged']} of {plant} flagged; AUROC against " \
                                                f"the data {metrics['planted']['auroc_against_the_data']:.3f}"
    top_items = [{"rank": i + 1, "id": dataset.ids[p], "label": labels[i], "score": float(scores[p]),
                  "input": images[i], "reconstruction": recons[i], "difference": differences[i]}
                 for i, p in enumerate(shown)]
    write_report(out / "report.html", table, summary, metrics.get("truth"), top_items, score, cut.value)
    return metrics
