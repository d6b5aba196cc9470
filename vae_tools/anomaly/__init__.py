"""Anomaly scores from a VAE's likelihood, thresholds, and a detector estimator."""

from vae_tools.anomaly.score_registry import Score, get_score, list_scores, register_score
from vae_tools.lazy import lazy_exports

_EXPORTS = {"VAEAnomalyDetector": "vae_tools.anomaly.detector", "compute_scores": "vae_tools.anomaly.scores",
            "score_parts": "vae_tools.anomaly.scores", "Threshold": "vae_tools.anomaly.threshold",
            "choose_threshold": "vae_tools.anomaly.threshold", "ground_truth": "vae_tools.anomaly.evaluation",
            "truth_metrics": "vae_tools.anomaly.evaluation", "planted_outliers": "vae_tools.anomaly.planted",
            "AnomalyReference": "vae_tools.anomaly.reference", "load_reference": "vae_tools.anomaly.reference",
            "reference_of": "vae_tools.anomaly.reference"}
__getattr__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted([*_EXPORTS, "Score", "get_score", "list_scores", "register_score"])  # noqa: F822
