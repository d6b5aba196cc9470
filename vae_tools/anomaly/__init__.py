"""Anomaly scores from a VAE's likelihood, thresholds, and a detector estimator."""

from vae_tools.anomaly.detector import VAEAnomalyDetector
from vae_tools.anomaly.scores import SCORES, all_scores, score_parts
from vae_tools.anomaly.threshold import Threshold, choose_threshold

__all__ = ["SCORES", "Threshold", "VAEAnomalyDetector", "all_scores", "choose_threshold", "score_parts"]
