"""``vaetools anomalies``: rank images by how badly the VAE explains them, and report the worst."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from vae_tools.anomaly.defaults import AUTO, AUTO_HELP, SAMPLES, SCORE, SCORING_BATCH_SIZE
from vae_tools.anomaly.score_registry import get_score, list_scores
from vae_tools.anomaly.threshold import MAX_CONTAMINATION
from vaetools_pipelines import common_options as common
from vaetools_pipelines.option_types import FINITE, FiniteFloat, RegisteredName, comma_list
from vaetools_pipelines.output_set import writes_output_set
from vaetools_pipelines.sections import Section, metrics_of
from vaetools_pipelines.step_api import Step, option
from vaetools_pipelines.steps import from_model

if TYPE_CHECKING:  # for the annotations only: the modules load when a step runs
    import numpy as np
    import pandas as pd


@dataclass(frozen=True)
class AnomaliesParameters:
    model_dir: str = common.model_run("A run folder from `vaetools train`, trained on normal images.")
    data: str = common.data()
    out: str = common.out_folder()
    reference: str = option(None, metavar="NORMAL_SOURCE", reads=True,
                            help="Normal images to compare every image with (nearest codes, the score's fitted state, "
                                 "the automatic cut). Default: the sample of its training images that the run folder "
                                 "keeps, so that an image's score does not depend on the images scored with it.")
    score: str = option(SCORE, type=RegisteredName(lambda: (AUTO, *list_scores())),
                        help=lambda: f"{AUTO}: {AUTO_HELP}; " + "; ".join(f"{name}: {get_score(name).help}"
                                                                         for name in list_scores()) + ".")
    samples: int = option(SAMPLES, type=click.IntRange(min=1),
                          help="Monte Carlo samples of z per image (elbo, iwae, complexity, adjusted).")
    contamination: float = option(None, type=FiniteFloat(0, MAX_CONTAMINATION, open_low=True, open_high=True),
                                  help="Expected share of anomalies (e.g. 0.01): flag that share of the highest scores.")
    percentile: float = option(None, type=FiniteFloat(0, 100, open_low=True, open_high=True),
                               help="Flag scores above this percentile (0-100).")
    threshold: float = option(None, type=FINITE, help="Flag scores above this value.")
    normal_labels: tuple = option(None, callback=comma_list, metavar="L1,L2",
                                  help="Ground truth: these labels are normal, all others anomalies (adds AUROC, AP, F1).")
    anomaly_labels: tuple = option(None, callback=comma_list, metavar="L1,L2",
                                   help="Ground truth: these labels are the anomalies.")
    top: int = option(24, type=click.IntRange(min=1), help="Anomalies shown in report.html (top_anomalies.png shows up to 12).")
    plant: int = option(0, type=click.IntRange(min=0, max=10_000), metavar="N",
                        help="A check without labelled anomalies: add N synthetic outliers (inverted copies of images "
                             "and uniform noise) and report how many are flagged and their AUROC against the data. The "
                             "threshold is set on the data alone; the data is then held in memory.")
    split: str = common.split()
    batch_size: int = common.batch_size(SCORING_BATCH_SIZE)
    device: str = common.device()
    seed: int = common.seed()
    quiet: bool = common.quiet()


def report(metrics: dict, p: AnomaliesParameters) -> list:
    from pathlib import Path

    truth = metrics.get("truth") or {}
    scored = f"; AUROC {truth['auroc']:.4f}" if truth.get("auroc") is not None else ""
    if p.plant:
        scored += (f"; planted outliers: {metrics['planted']['flagged']} of {p.plant} flagged, AUROC "
                   f"{metrics['planted']['auroc_against_the_data']:.4f}")
    lines = [f"{metrics['n_anomalies']} of {metrics['n_images']} images flagged (threshold "
             f"{metrics['threshold']['value']:.4g}, {metrics['threshold']['method']}){scored}; "
             f"report: {Path(p.out) / 'report.html'}"]
    for name, choice in metrics["choices"].items():
        lines.append(f"{name.replace('_', ' ')} {shown(choice['value'])}: {choice['why']}")
    return lines




def shown(value) -> str:
    """A choice's value as the report prints it: a name as it is, a number to 3 figures."""
    return value if isinstance(value, str) else f"{value:.3g}"


def planted_set(dataset, n: int, seed: int):
    """``n`` synthetic outliers of the data's kind, as a data set of their own (ids planted-KIND-NNNN)."""
    import numpy as np

    from vae_tools.anomaly.planted import planted_outliers
    from vae_tools.data import ImageDataset
    from vae_tools.data.arrays import ArrayReader
    from vae_tools.errors import DataError

    sample = np.random.default_rng(seed).choice(len(dataset), size=min(len(dataset), max(n, 100)), replace=False)
    outliers, kinds = planted_outliers(dataset.batch(np.sort(sample)).numpy(), n, seed)
    ids = [f"planted-{kind}-{k:04d}" for k, kind in enumerate(kinds)]
    clash = set(ids) & set(dataset.ids.astype(str))
    if clash:
        raise DataError(f"{dataset.name}: already has an image with the id {sorted(clash)[0]!r}, which --plant uses")
    return ImageDataset(ArrayReader(outliers, "planted outliers"), ids, None, dataset.shape[0], tuple(dataset.shape[1:]))


def combined_batches(first, second):
    """Images by position over two data sets, one after the other."""
    import numpy as np
    import torch

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
    from sklearn.metrics import roc_auc_score

    return {"n": int(planted.sum()), "flagged": int(flagged[planted].sum()),
            "auroc_against_the_data": float(roc_auc_score(planted, scores)),
            "note": "synthetic outliers (inverted copies of images and uniform noise) added to the data as a check; "
                    "the threshold is set on the data alone"}


@dataclass
class ScoredImages:
    """The scored images (the data, then any planted outliers) and what the report needs of each."""
    parts: pd.DataFrame  # the score and the quantities it was computed from, one row per image
    ids: np.ndarray
    labels: np.ndarray | None
    truth: np.ndarray | None
    planted: np.ndarray
    images_of: object  # positions -> image tensor


def score_images(p: AnomaliesParameters, detector, dataset) -> ScoredImages:
    import numpy as np
    import pandas as pd

    from vae_tools.anomaly.evaluation import ground_truth

    truth = ground_truth(dataset.labels, p.normal_labels, p.anomaly_labels, p.data)
    parts = detector.score_parts_ if detector.reference_ is dataset else detector.score_parts(dataset, [p.score])
    scored = ScoredImages(parts, dataset.ids.astype(str),
                          np.asarray(dataset.labels, dtype=object) if dataset.has_labels else None, truth,
                          np.zeros(len(dataset), dtype=bool), dataset.batch)
    if not p.plant:
        return scored
    extra = planted_set(dataset, p.plant, p.seed)  # scored like any new image: against the data's threshold
    parts = pd.concat([scored.parts, detector.score_parts(extra, [p.score])], ignore_index=True)
    labels = scored.labels
    return ScoredImages(
        parts, np.concatenate([scored.ids, extra.ids.astype(str)]),
        None if labels is None else np.concatenate([labels.astype(str), np.full(p.plant, "planted")]).astype(object),
        None if truth is None else np.concatenate([truth, np.ones(p.plant, dtype=truth.dtype)]),
        np.arange(len(parts)) >= len(dataset), combined_batches(dataset, extra))


def anomaly_table(scored: ScoredImages, scores: np.ndarray, flagged: np.ndarray, order: np.ndarray):
    """One row per image, worst first: id, score, rank, flag, what is known of it, the score's parts."""
    import numpy as np
    import pandas as pd

    rank = np.empty(len(scores), dtype=np.int64)
    rank[order] = np.arange(1, len(scores) + 1)
    table = pd.DataFrame({"id": scored.ids, "score": scores, "rank": rank, "is_anomaly": flagged})
    if scored.labels is not None:
        table["label"] = scored.labels
    if scored.truth is not None:
        table["true_anomaly"] = scored.truth.astype(bool)
    if scored.planted.any():
        table["planted"] = scored.planted
    for column in scored.parts.columns:
        table[column] = scored.parts[column].to_numpy()
    return table.sort_values("rank", kind="stable").reset_index(drop=True)


def normal_reference(p: AnomaliesParameters, model, dataset) -> tuple:
    """The normal images the scores compare with, and the choice's record ({"value", "why"})."""
    from vae_tools.anomaly.reference import load_reference
    from vae_tools.data import load_dataset

    if p.reference:
        normal = load_dataset(p.reference, image_size=tuple(dataset.image_size), channels=dataset.channels,
                              split=p.split)
        return normal, {"value": f"{len(normal):,} images of {p.reference}", "automatic": False,
                        "why": "given as the normal images"}
    kept = load_reference(p.model_dir, model.latent_dim)
    if kept is not None:
        why = ("normal by construction, and kept by `vaetools train` in the run folder, so an image's score does "
               "not depend on the images scored with it")
        if p.samples != kept.samples:
            why += (f"; their likelihood terms were estimated with {kept.samples} draws of z, these with "
                    f"{p.samples}, which shifts likelihood-based scores slightly against them")
        return kept, {"value": kept.described, "why": why}
    return dataset, {"value": "the scored images", "why": "this run folder was trained by an earlier vaetools and "
                     "keeps no sample of its training images, so the images are compared with each other: their "
                     "scores change with the batch's make-up and fail where anomalies are not rare; train again, or "
                     "give normal images with --reference"}


def data_cut(p: AnomaliesParameters, detector, scores):
    """The cut: a share of these images' highest scores where one is asked for, else the detector's,
    set on the normal reference images (median + 3.5 robust standard deviations) or given."""
    from vae_tools.anomaly.threshold import choose_threshold

    if p.contamination is None and p.percentile is None:
        return detector.threshold_info_
    return choose_threshold(scores, p.contamination, p.percentile)


def anomaly_metrics(p: AnomaliesParameters, detector, compared_with: dict, cut, scored: ScoredImages, scores,
                    flagged) -> dict:
    from vae_tools.anomaly.evaluation import truth_metrics

    data = ~scored.planted
    metrics = {"score": p.score, "samples": p.samples, "background_weight": detector.background_weight_,
               "choices": {"reference": compared_with, **detector.choices_}, "n_images": int(data.sum()), "n_anomalies": int(flagged[data].sum()),
               "threshold": cut.to_dict(), "model": str(p.model_dir), "data": str(p.data)}
    if scored.truth is not None:
        metrics["truth"] = truth_metrics(scored.truth, scores, flagged)
        metrics["truth"]["normal_labels" if p.normal_labels else "anomaly_labels"] = list(p.normal_labels or p.anomaly_labels)
    if p.plant:
        metrics["planted"] = planted_metrics(scored.planted, scores, flagged)
    return metrics


def top_anomalies(p: AnomaliesParameters, model, scored: ScoredImages, scores, order, image_shape, out: Path) -> list:
    """Draws top_anomalies.png (image, reconstruction, difference of the worst) and returns the
    report's items for the ``p.top`` worst."""
    import numpy as np
    import torch

    from vaetools_pipelines.figures import thumbnail_rows

    shown = order[: min(p.top, len(order))]
    images = scored.images_of(shown).numpy() if len(shown) else np.zeros((0, *image_shape), np.float32)
    with torch.no_grad():
        device = next(model.parameters()).device
        recons = model.reconstruct(torch.from_numpy(images).to(device)).float().clamp(0, 1).cpu().numpy()
    differences = np.abs(images - recons).max(axis=1, keepdims=True)
    labels = [scored.labels[k] if scored.labels is not None else ("planted" if scored.planted[k] else "") for k in shown]
    columns = min(12, max(1, len(shown)))
    captions = [f"#{i + 1} {labels[i]}\n{scores[k]:.4g}" if str(labels[i]) else f"#{i + 1}\n{scores[k]:.4g}"
                for i, k in enumerate(shown)]
    thumbnail_rows([("image", images[:columns], captions[:columns]), ("reconstruction", recons[:columns], [""] * columns),
                    ("difference", differences[:columns], [""] * columns)], out / "top_anomalies.png",
                   title=f"highest {p.score} scores (rank, label, score above each image)", max_columns=columns)
    return [{"rank": i + 1, "id": scored.ids[k], "label": labels[i], "score": float(scores[k]),
             "input": images[i], "reconstruction": recons[i], "difference": differences[i]}
            for i, k in enumerate(shown)]


def report_summary(p: AnomaliesParameters, metrics: dict) -> dict:
    cut = metrics["threshold"]
    flagged = metrics["n_anomalies"]
    summary = {"data": p.data, "model": str(p.model_dir), "images": metrics["n_images"], "score": p.score,
               "Monte Carlo samples": p.samples, "threshold": f"{cut['value']:.6g} ({cut['method']}"
               + (f" {cut['parameter']}" if cut.get("parameter") is not None else "") + ")",
               "flagged as anomalies": f"{flagged} ({flagged / metrics['n_images']:.2%})"}
    if p.plant:
        summary["planted outliers (a check)"] = f"{metrics['planted']['flagged']} of {p.plant} flagged; AUROC against " \
                                                f"the data {metrics['planted']['auroc_against_the_data']:.3f}"
    return summary


@writes_output_set
def run(p: AnomaliesParameters) -> dict:
    """Writes anomalies.csv and .parquet, metrics.json, top_anomalies.png and report.html into ``p.out``.
    Under torchrun every process scores its share; only the first writes (the others return an
    empty dict)."""
    import dataclasses

    import numpy as np

    from vae_tools.anomaly.detector import VAEAnomalyDetector
    from vae_tools.atomic import write_json
    from vae_tools.errors import DataError
    from vae_tools.tables import write_table
    from vae_tools import distributed
    from vaetools_pipelines.anomaly_report import write_report
    from vaetools_pipelines.latent_inputs import ensure_out_dir
    from vaetools_pipelines.run_inputs import load_model_and_data

    if p.score != AUTO:
        get_score(p.score)  # an unknown score is refused before anything is read
    if sum(v is not None for v in (p.contamination, p.percentile, p.threshold)) > 1:
        raise DataError("give at most one of --contamination, --percentile and --threshold")
    model, dataset, _ = load_model_and_data(p.model_dir, p.data, p.split, p.device)
    reference, compared_with = normal_reference(p, model, dataset)
    if len(reference) < 2:
        raise DataError(f"{p.reference or p.data}: holds {len(reference)} image; the scores compare an image with "
                        "normal ones, so give at least 2")
    detector = VAEAnomalyDetector(vae=model, score=p.score, samples=p.samples, threshold=p.threshold,
                                  scoring_batch_size=p.batch_size, random_state=p.seed,
                                  verbose=not p.quiet).fit(reference)
    p = dataclasses.replace(p, score=detector.score_)  # from here on, the score used ("auto" resolved)
    scored = score_images(p, detector, dataset)
    if not distributed.is_main_process():
        return {}
    scores = scored.parts[p.score].to_numpy()
    cut = data_cut(p, detector, scores[~scored.planted])
    flagged = scores > cut.value
    order = np.argsort(-scores, kind="stable")
    table = anomaly_table(scored, scores, flagged, order)
    metrics = anomaly_metrics(p, detector, compared_with, cut, scored, scores, flagged)
    out = ensure_out_dir(p.out)
    write_table(table, out / "anomalies.csv")
    write_table(table, out / "anomalies.parquet")
    top_items = top_anomalies(p, model, scored, scores, order, dataset.shape, out)
    write_json(out / "metrics.json", metrics)
    write_report(out / "report.html", table, report_summary(p, metrics), metrics.get("truth"), top_items, p.score,
                 cut.value)
    return metrics


def section(run: Path) -> Section:
    metrics = metrics_of(run, STEP.name)
    section = Section("Anomalies")
    if metrics:
        share = metrics["n_anomalies"] / max(1, metrics["n_images"])
        section.sentences.append(
            f"{metrics['n_anomalies']} of {metrics['n_images']} images ({share:.1%}) score above the threshold "
            f"({metrics['threshold']['method']}) on the {metrics['score']} score, which is high where the model "
            "explains an image badly. The full report is anomalies/report.html.")
        for name, choice in (metrics.get("choices") or {}).items():
            section.sentences.append(f"The score is {shown(choice['value'])}: {choice['why']}." if name == "score" else
                                     f"The score's {name.replace('_', ' ')}, {shown(choice['value'])}: {choice['why']}.")
        truth = metrics.get("truth") or {}
        if truth.get("auroc") is not None:
            section.sentences.append(
                f"Against the known anomalies: AUROC {truth['auroc']:.3f} (0.5: chance; 1: every anomaly scores "
                f"above every normal image), {truth['true_positives']} of {truth['n_true_anomalies']} found among "
                f"the flagged.")
        planted = metrics.get("planted")
        if planted:
            section.sentences.append(
                f"As a check, {planted['n']} synthetic outliers (inverted copies of images and pure noise) were "
                f"planted among the images: {planted['flagged']} of them are flagged, and their scores rank above "
                f"the real images' with AUROC {planted['auroc_against_the_data']:.3f} (0.5: chance; 1: all above).")
    section.figures.append((run / STEP.output / "top_anomalies.png", "The highest-scoring images, their "
                            "reconstructions, and where the two differ (bright: badly explained).", "100%"))
    return section


def key_figures(run: Path) -> list:
    anomalies = metrics_of(run, STEP.name)
    if not anomalies:
        return []
    text = f"{anomalies['n_anomalies']} of {anomalies['n_images']} flagged ({anomalies['score']} score)"
    truth = anomalies.get("truth") or {}
    if truth.get("auroc") is not None:
        text += f", AUROC {truth['auroc']:.3f}"
    return [("anomalies", text)]


STEP = Step(
    name="anomalies", section=section, key_figures=key_figures, parameters=AnomaliesParameters, run=run, report=report, output="anomalies",
    supplies=from_model, needs=("train",), distributed=True,
    help="""Score every image by how badly the VAE explains it and report the worst.

    Every image is compared with normal images: by default a sample of the model's training images
    kept in its run folder (--reference names others), so an image's score does not depend on the
    images scored with it. Without --contamination/--percentile/--threshold the cut is automatic:
    median + 3.5 robust standard deviations (MAD) of the normal images' scores, which needs no
    labelled anomalies. Writes
    anomalies.csv/.parquet (id, score, rank, is_anomaly, label, and the quantities the score is made
    of), metrics.json,
    top_anomalies.png and report.html (self-contained; open it in any browser).
    """)
