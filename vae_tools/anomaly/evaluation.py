"""How well anomaly scores match a known truth: the truth from labels, and AUROC, AP, F1."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

from vae_tools.errors import DataError


def ground_truth(labels: Optional[np.ndarray], normal_labels: Sequence[str] = (), anomaly_labels: Sequence[str] = (),
                 source: str = "the data") -> Optional[np.ndarray]:
    """1 for a true anomaly: every label not in ``normal_labels``, or every label in
    ``anomaly_labels`` (labels compare as text); None when neither is given."""
    normal_labels, anomaly_labels = [str(v) for v in normal_labels], [str(v) for v in anomaly_labels]
    if not normal_labels and not anomaly_labels:
        return None
    if normal_labels and anomaly_labels:
        raise DataError("give the normal labels or the anomaly labels, not both")
    if labels is None:
        raise DataError(f"{source}: has no labels, so normal or anomaly labels cannot be applied")
    text = np.asarray(labels).astype(str)
    chosen = set(normal_labels or anomaly_labels)
    unknown = chosen - set(text)
    if unknown:
        raise DataError(f"{source}: no image has the label(s) {', '.join(sorted(unknown))}")
    member = np.isin(text, list(chosen))
    return (~member if normal_labels else member).astype(int)


def truth_metrics(truth: np.ndarray, scores: np.ndarray, flagged: np.ndarray) -> dict:
    """Counts of found and false anomalies at the threshold, and AUROC / AP over the scores."""
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
