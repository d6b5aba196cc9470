"""Where the anomalies start: a cut on the scores, chosen with or without labelled anomalies."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from vae_tools.errors import DataError

# 1.4826 * MAD estimates the standard deviation of normally distributed scores.
MAD_TO_SIGMA = 1.4826
# Anomalies are the minority: a larger expected share would call the normal images anomalous.
MAX_CONTAMINATION = 0.5


@dataclass(frozen=True)
class Threshold:
    method: str  # auto | contamination | percentile | value
    value: float
    parameter: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def choose_threshold(scores: np.ndarray, contamination: float | None = None, percentile: float | None = None,
                     value: float | None = None, mad_k: float = 3.5) -> Threshold:
    """At most one of ``contamination`` (expected share of anomalies), ``percentile`` or a fixed
    ``value``; with none of them, the robust rule median + ``mad_k`` x 1.4826 x MAD, which needs no
    labelled anomalies and is not dragged up by the anomalies themselves."""
    given = [v is not None for v in (contamination, percentile, value)]
    if sum(given) > 1:
        raise DataError("give at most one of `contamination`, `percentile` and `threshold`")
    scores = np.asarray(scores, dtype=np.float64)
    if contamination is not None:
        if not 0 < contamination < MAX_CONTAMINATION:
            raise DataError(f"`contamination` must lie in (0, {MAX_CONTAMINATION:g}), got {contamination}")
        return Threshold("contamination", float(np.quantile(scores, 1 - contamination)), contamination)
    if percentile is not None:
        if not 0 < percentile < 100:
            raise DataError(f"`percentile` must lie in (0, 100), got {percentile}")
        return Threshold("percentile", float(np.percentile(scores, percentile)), percentile)
    if value is not None:
        return Threshold("value", float(value), None)
    median = float(np.median(scores))
    mad = float(np.median(np.abs(scores - median))) * MAD_TO_SIGMA
    return Threshold("auto", median + mad_k * mad, mad_k)
