"""What ``score="auto"`` means for a model: the scores worth computing on the reference images to
decide, and the decision with its reason."""

from __future__ import annotations

import math

from vae_tools.anomaly.defaults import AUTO, FALLBACK_SCORE, PHOTO_FALLBACK_SCORE, PHOTO_SCORE, ROTATION_KNOWN
from vae_tools.anomaly.score_registry import ROTATION, get_score
from vae_tools.errors import DataError


def has_rotation_head(model) -> bool:
    return getattr(model, "rotation_head", None) is not None


def usable_scores(model, names) -> list:
    """``names`` less the scores this model cannot compute (the rotation score without a rotation head)."""
    return [n for n in names if has_rotation_head(model) or ROTATION not in get_score(n).needs]


def check_computable(model, names) -> None:
    """One error for a score this model cannot compute (the rotation score without a rotation head)."""
    for name in names:
        if ROTATION in get_score(name).needs and not has_rotation_head(model):
            raise DataError(f"the {name} score needs a photo model trained with its rotation term; this "
                            f"{getattr(model, 'registry_name', type(model).__name__)} model has none")


def candidates(score: str, model) -> list:
    if score != AUTO:
        return [score]
    if not has_rotation_head(model):
        return [FALLBACK_SCORE]
    return [PHOTO_SCORE, PHOTO_FALLBACK_SCORE]


def chosen(score: str, model, reference_parts) -> tuple:
    """(the score's name, {"value", "why"} or None when it was asked for by name)."""
    if score != AUTO:
        return score, None
    if "rotation" not in reference_parts:
        return FALLBACK_SCORE, {"value": FALLBACK_SCORE, "why": "the model has no rotation head (only the photo "
                                                                "model has one), so the likelihood-based score"}
    chance = math.log(len(model.turns))
    known = float(reference_parts["rotation"].mean()) / chance
    fact = (f"the rotation head's -log p(turn) on the reference images is {known:.0%} of chance's "
            f"({len(model.turns)} turns)")
    if known <= ROTATION_KNOWN:
        return PHOTO_SCORE, {"value": PHOTO_SCORE, "why": fact + ", so how sure it is of a new image's turns counts "
                                                            "beside the distance to the nearest reference codes"}
    return PHOTO_FALLBACK_SCORE, {"value": PHOTO_FALLBACK_SCORE, "why": fact + f", above {ROTATION_KNOWN:.0%}: these "
                                  "images look alike turned (cells, textures, views from above), so the distance "
                                  "to the nearest reference codes alone"}
