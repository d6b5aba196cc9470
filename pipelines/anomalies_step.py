"""``vaetools anomalies``: rank images by how badly the VAE explains them, and report the worst."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import roc_auc_score

from vaetools_pipelines.anomaly_report import write_report
from vaetools_pipelines.figures import thumbnail_rows
from vaetools_pipelines.latent_inputs import ensure_out_dir
from vaetools_pipelines.run_inputs import load_model_and_data
from vaetools_pipelines.output_set import writes_output_set
from vae_tools.anomaly.defaults import SAMPLES, SCORE, SCORES
from vae_tools.anomaly.detector import VAEAnomalyDetector
from vae_tools.anomaly.evaluation import ground_truth, truth_metrics
from vae_tools.atomic import write_json
from vae_tools.errors import DataError
from vae_tools.tables import write_table

PART_COLUMNS = ("adjusted", "complexity", "iwae", "elbo", "recon", "kl", "latent", "background")


def planted_set(dataset, n: int, seed: int):
    """``n`` synthetic outliers of the data's kind, as a data set of their own (ids planted-KIND-NNNN)."""
    from vae_tools.anomaly.planted import planted_outliers
    from vae_tools.data import ImageDataset
    from vae_tools.data.arrays import ArrayReader

    sample = np.random.default_rng(seed).choice(len(dataset), size=min(len(dataset), max(n, 100)), replace=False)
    outliers, kinds = planted_outliers(dataset.batch(np.sort(sample)).numpy(), n, seed)
    ids = [f"planted-{kind}-{k:04d}" for k, kind in enumerate(kinds)]
    clash = set(ids) & set(dataset.ids.astype(str))
    if clash:
        raise DataError(f"{dataset.name}: already has an image with the id {sorted(clash)[0]!r}, which --plant uses")
    return ImageDataset(ArrayReader(outliers, "planted outliers"), ids, None, dataset.shape[0], tuple(dataset.shape[1:]))


def combined_batches(first, second):
    """Images by position over two data sets, one after the other."""
    def batch(positions: np.ndarray):
        positions = np.asarray(positions)
        out = torch.empty((len(positions), *first.shape))
        inside = positions < len(first)
        if inside.any():
            out[inside] = first.batch(positions[inside])
        if (~inside).any():
            out[~inside] = second.batch(positions[~inside] - len(first))
        return out

    return batch


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
    write: bool = True,
) -> dict:
    """Writes anomalies.csv and .parquet, metrics.json, top_anomalies.png and report.html into ``out``.
    Under torchrun every process scores its share; only the one with ``write`` writes (the others
    return an empty dict)."""
    if score not in SCORES:
        raise DataError(f"unknown score {score!r}: use one of {', '.join(SCORES)}")
    model, dataset, torch_device = load_model_and_data(model_dir, data, split, device)
    if len(dataset) < 2:
        raise DataError(f"{data}: holds {len(dataset)} image; anomaly scores rank images against each other, "
                        "so give at least 2")
    truth = ground_truth(dataset.labels, normal_labels, anomaly_labels, data)
    detector = VAEAnomalyDetector(vae=model, score=score, samples=samples, contamination=contamination,
                                  percentile=percentile, threshold=threshold, scoring_batch_size=batch_size,
                                  random_state=seed, verbose=progress).fit(dataset)
    parts, cut = detector.score_parts_, detector.threshold_info_
    planted = np.zeros(len(dataset), dtype=bool)
    ids = dataset.ids.astype(str)
    labels = np.asarray(dataset.labels, dtype=object) if dataset.has_labels else None
    images_of = dataset.batch
    if plant:  # scored like any new image: against the data's threshold and latent mixture
        extra = planted_set(dataset, plant, seed)
        parts = pd.concat([parts, detector.score_parts(extra)], ignore_index=True)
        planted = np.arange(len(parts)) >= len(dataset)
        ids = np.concatenate([ids, extra.ids.astype(str)])
        labels = None if labels is None else np.concatenate([labels.astype(str), np.full(plant, "planted")]).astype(object)
        truth = None if truth is None else np.concatenate([truth, np.ones(plant, dtype=truth.dtype)])
        images_of = combined_batches(dataset, extra)
    if not write:
        return {}
    scores = parts[score].to_numpy()
    flagged = scores > cut.value
    order = np.argsort(-scores, kind="stable")
    rank = np.empty(len(scores), dtype=np.int64)
    rank[order] = np.arange(1, len(scores) + 1)

    table = pd.DataFrame({"id": ids, "score": scores, "rank": rank, "is_anomaly": flagged})
    if labels is not None:
        table["label"] = labels
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
    metrics = {"score": score, "samples": samples, "background_weight": detector.background_weight_,
               "choices": {"background_weight": {"value": detector.background_weight_,
                                                 "why": detector.background_weight_why_}},
               "n_images": int((~planted).sum()),
               "n_anomalies": int(flagged[~planted].sum()),
               "threshold": cut.to_dict(), "model": str(model_dir), "data": str(data)}
    if truth is not None:
        metrics["truth"] = truth_metrics(truth, scores, flagged)
        metrics["truth"]["normal_labels" if normal_labels else "anomaly_labels"] = list(normal_labels or anomaly_labels)
    if plant:
        metrics["planted"] = planted_metrics(planted, scores, flagged)

    shown = order[: min(top, len(order))]
    images = images_of(shown).numpy() if len(shown) else np.zeros((0, *dataset.shape), np.float32)
    with torch.no_grad():
        recons = model.reconstruct(torch.from_numpy(images).to(torch_device)).float().clamp(0, 1).cpu().numpy()
    differences = np.abs(images - recons).max(axis=1, keepdims=True)
    shown_labels = [labels[p] if labels is not None else ("planted" if planted[p] else "") for p in shown]
    columns = min(12, max(1, len(shown)))
    captions = [f"#{i + 1} {shown_labels[i]}\n{scores[p]:.4g}" if str(shown_labels[i]) else f"#{i + 1}\n{scores[p]:.4g}"
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
    top_items = [{"rank": i + 1, "id": ids[p], "label": shown_labels[i], "score": float(scores[p]),
                  "input": images[i], "reconstruction": recons[i], "difference": differences[i]}
                 for i, p in enumerate(shown)]
    write_report(out / "report.html", table, summary, metrics.get("truth"), top_items, score, cut.value)
    return metrics
