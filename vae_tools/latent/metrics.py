"""Scores of predicted labels against the truth."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import confusion_matrix, f1_score


def classification_metrics(y_true, y_pred) -> dict:
    """Accuracy, per-class accuracy (recall), macro F1 and the confusion matrix (rows: truth).
    Labels are compared as text, so 3 and "3" agree."""
    y_true = np.asarray(y_true).astype(str)
    y_pred = np.asarray(y_pred).astype(str)
    labels = sorted(set(y_true) | set(y_pred), key=_natural_key)
    matrix = confusion_matrix(y_true, y_pred, labels=labels)
    support = matrix.sum(1)
    per_class = {label: (float(matrix[i, i] / support[i]) if support[i] else None) for i, label in enumerate(labels)}
    return {
        "n": int(len(y_true)),
        "accuracy": float(np.mean(y_true == y_pred)) if len(y_true) else None,
        "macro_f1": float(f1_score(y_true, y_pred, labels=sorted(set(y_true), key=_natural_key), average="macro",
                                   zero_division=0)) if len(y_true) else None,
        "per_class_accuracy": per_class,
        "confusion_matrix": {"labels": labels, "matrix": matrix.tolist()},
    }


def _natural_key(text: str):
    try:
        return (0, float(text), text)
    except ValueError:
        return (1, 0.0, text)
