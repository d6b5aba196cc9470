"""index.html in a run folder: one section per step, each figure with a sentence saying what it
measures and against what, the step's files beside it; then the steps' record and the versions."""

from __future__ import annotations

import base64
import csv
import html
import json
from dataclasses import dataclass, field
from pathlib import Path

from vaetools_pipelines.anomaly_report import STYLE
from vaetools_pipelines.steps import LAYOUT
from vae_tools.atomic import atomic_path

INDEX_FILE = "index.html"
PAGE_STYLE = STYLE + """
nav{font-size:.9rem;margin:.5rem 0 1rem}nav a{margin-right:.8rem}
section{margin-bottom:1.5rem}figure{margin:1rem 0}figure img{max-width:100%;height:auto}
figcaption{color:#444;font-size:.9rem;margin-top:.3rem;max-width:60rem}
.files{font-size:.85rem;color:#555}.files a{margin-right:.7rem;white-space:nowrap}
td code{word-break:break-all}.lead{font-size:1rem;color:#333}
@media print{nav{display:none}section,figure{break-inside:avoid}body{margin:0;max-width:none}}
"""


@dataclass
class Section:
    title: str
    sentences: list = field(default_factory=list)  # what the step found, in words
    figures: list = field(default_factory=list)  # (path, caption, width)


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _csv_rows(path: Path):
    try:
        with open(path, newline="") as handle:
            rows = list(csv.DictReader(handle))
    except OSError:
        return []
    return rows


def _train(run: Path) -> Section:
    section = Section("Training")
    rows = _csv_rows(run / "model" / "history.csv")
    if rows:
        monitored = "val_loss" if rows[0].get("val_loss") not in ("", "nan", None) else "train_loss"
        best = min(rows, key=lambda r: float(r[monitored]))
        which = "validation" if monitored == "val_loss" else "training"
        section.sentences.append(
            f"{len(rows)} epochs; the best {which} loss, {float(best[monitored]):.2f} nats per image, came at "
            f"epoch {best['epoch']}, and those weights are the model. The loss is the negative ELBO: how many "
            "nats the model needs to describe an image (lower is better).")
    section.figures.append((run / "model" / "loss_curves.png", "Loss per epoch on the training images and on the "
                            "held-out validation images, with the reconstruction and KL terms apart. A validation "
                            "curve that turns up while training keeps falling means overfitting.", "100%"))
    return section


def _embed(run: Path) -> Section:
    section = Section("Embeddings")
    path = run / "embeddings.parquet"
    if path.exists():
        import pyarrow.parquet as pq

        schema = pq.read_schema(path)
        latent = sum(name.startswith("mu_") for name in schema.names)
        rows = pq.ParquetFile(path).metadata.num_rows
        section.sentences.append(
            f"{rows} images encoded: one row each, keyed by its id, with the {latent} means of its latent code "
            f"(mu_0 to mu_{latent - 1})" + (", its label" if "label" in schema.names else "")
            + (" and its negative ELBO (how badly the model explains it)" if "neg_elbo" in schema.names else "")
            + ". Every later step works from these codes; the table opens in pandas, Polars, DuckDB or Spark.")
    return section


def _labels(run: Path, metrics: dict) -> Section:
    section = Section("Label propagation")
    if metrics:
        section.sentences.append(f"{metrics['n_labelled']} images had labels; {metrics['n_unlabelled']} were "
                                 f"given one. Features: {metrics['choices']['features']} "
                                 f"({metrics['choices']['features_why']}). Refinement: "
                                 f"{metrics['choices']['refinement']}.")
        if "maps" in metrics["choices"]:
            section.sentences.append(f"Maps averaged: {metrics['choices']['maps']} "
                                     f"({metrics['choices']['maps_why']}).")
    if metrics.get("accuracy_unlabelled") is not None:
        matrix = metrics["unlabelled"]["confusion_matrix"]["matrix"]
        totals = [sum(row) for row in matrix]
        chance = max(totals) / max(1, sum(totals))
        text = (f"Accuracy on the images whose labels were hidden, against those labels: "
                f"{metrics['accuracy_unlabelled']:.1%}")
        if metrics.get("baseline"):
            text += (f"; a plain method on the same labels ({metrics['baseline']['method']}) gets "
                     f"{metrics['baseline']['accuracy_unlabelled']:.1%}")
        section.sentences.append(text + f"; always guessing the commonest label would get {chance:.1%}.")
        section.figures.append((run / "labels" / "confusion.png", "Confusion matrix of the images whose labels "
                                "were hidden: a row per true label, a column per predicted one; the diagonal is "
                                "right, every other cell a kind of mistake.", "560px"))
    section.figures.append((run / "labels" / "suggestions.png", "The unlabelled images whose label is least "
                            "certain and that stand for many others: labelling these first helps most.", "100%"))
    return section


def _clusters(run: Path, metrics: dict) -> Section:
    section = Section("Clustering")
    if metrics:
        text = f"{metrics['n_clusters']} clusters by {metrics['method']} over {metrics['n_samples']} images"
        if "features" in metrics:
            text += f", made on the {metrics['features']} ({metrics['features_why']})"
            if metrics.get("feature_silhouettes"):
                text += "; silhouette of each candidate: " + ", ".join(
                    f"{k} {v:.3f}" for k, v in metrics["feature_silhouettes"].items())
        if "accuracy" in metrics:
            text += (f". Against the true labels: accuracy {metrics['accuracy']:.1%} after matching each cluster to "
                     f"one label, NMI {metrics['nmi']:.3f} (0: unrelated to the labels, 1: the labels exactly), "
                     f"ARI {metrics.get('ari', float('nan')):.3f} (0: chance)")
        section.sentences.append(text + ".")
    section.figures.append((run / "clusters" / "cluster_examples.png", "The most confidently assigned images of "
                            "each cluster (true label above each).", "100%"))
    return section


def _umap(run: Path) -> Section:
    section = Section("UMAP map of the latent space")
    for name in ("umap_label.png", "umap_predicted_label.png", "umap_cluster.png"):
        path = run / "umap" / name
        if path.exists():
            colour = name[len("umap_"):-len(".png")].replace("_", " ")
            section.figures.append((path, f"Each dot is an image, placed so that images with similar latent codes "
                                    f"sit together; colour: {colour}. Separate islands of one colour mean the "
                                    "model tells those classes apart; distances between islands mean little.",
                                    "720px"))
            break
    section.figures.append((run / "umap" / "umap_thumbnails.png", "The images themselves at their places on the "
                            "map.", "720px"))
    return section


def _anomalies(run: Path, metrics: dict) -> Section:
    section = Section("Anomalies")
    if metrics:
        share = metrics["n_anomalies"] / max(1, metrics["n_images"])
        section.sentences.append(
            f"{metrics['n_anomalies']} of {metrics['n_images']} images ({share:.1%}) score above the threshold "
            f"({metrics['threshold']['method']}) on the {metrics['score']} score, which is high where the model "
            "explains an image badly. The full report with every score is anomalies/report.html.")
        weight = (metrics.get("choices") or {}).get("background_weight")
        if weight and metrics["score"] == "adjusted":
            section.sentences.append(f"The score subtracts each image's complexity with weight "
                                     f"{weight['value']:.2f}: {weight['why']}.")
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
    section.figures.append((run / "anomalies" / "top_anomalies.png", "The highest-scoring images, their "
                            "reconstructions, and where the two differ (bright: badly explained).", "100%"))
    return section


def _denoise(run: Path, metrics: dict) -> Section:
    section = Section("Denoising")
    if "psnr_db" in metrics:
        psnr, ssim = metrics["psnr_db"], metrics["ssim"]
        section.sentences.append(
            f"Against the clean images: PSNR from {psnr['before']:.2f} dB for the noisy input to {psnr['after']:.2f} "
            f"dB denoised ({psnr['gain']:+.2f} dB; every 3 dB halves the squared error); SSIM from "
            f"{ssim['before']:.3f} to {ssim['after']:.3f} (1: the same structure as the clean image).")
    section.figures.append((run / "denoise" / "comparison.png", "Rows: the noisy input, the model's output, and "
                            "(when known) the clean image.", "100%"))
    return section


def _generated(name: str, title: str, caption: str, width: str):
    def section(run: Path) -> Section:
        return Section(title, figures=[(run / name, caption, width)])
    return section


def _with_metrics(folder: str, build):
    """A section builder given the step's metrics.json ({} when it has none)."""
    return lambda run: build(run, _read_json(run / folder / "metrics.json") or {})


SECTIONS = {
    "train": _train, "embed": _embed, "label-propagate": _with_metrics("labels", _labels),
    "cluster": _with_metrics("clusters", _clusters), "umap": _umap, "anomalies": _with_metrics("anomalies", _anomalies),
    "denoise": _with_metrics("denoise", _denoise),
    "sample": _generated("samples/samples.png", "New images drawn by the model", "Codes drawn from a Gaussian "
                         "mixture fitted to the training images' latent codes, decoded. Blurry or broken shapes "
                         "mean the model has not learned the data well enough to generate it.", "480px"),
    "reconstruct": _generated("reconstructions/reconstructions.png", "Reconstructions", "Rows of images, each "
                              "above its reconstruction from the latent code: what the code keeps of an image.",
                              "640px"),
    "interpolate": _generated("interpolations/interpolations.png", "Interpolation between pairs of images",
                              "Each row starts and ends with a real image; between them, decoded codes on the "
                              "spherical path joining their latent codes. Smooth changes mean a continuous latent "
                              "space, which label propagation and clustering rely on.", "100%"),
    "traverse": _generated("traverse/traverse.png", "What each latent dimension does", "A row per active "
                           "dimension (most informative first): the code at 0 except that one dimension, which "
                           "goes from -3 to +3.", "100%"),
}


def key_figures(run: Path) -> list:
    """(label, value) pairs from the steps' metrics files, where they exist."""
    figures = []
    labels = _read_json(run / "labels" / "metrics.json")
    if labels:
        figures.append(("labels given / predicted", f"{labels['n_labelled']} / {labels['n_unlabelled']}"))
        if labels.get("accuracy_unlabelled") is not None:
            text = f"{labels['accuracy_unlabelled']:.2%}"
            if labels.get("baseline"):
                text += f" (plain baseline, {labels['baseline']['method']}: {labels['baseline']['accuracy_unlabelled']:.2%})"
            figures.append(("label accuracy on the unlabelled", text))
    clusters = _read_json(run / "clusters" / "metrics.json")
    if clusters:
        text = f"{clusters['n_clusters']} clusters ({clusters['method']})"
        if "accuracy" in clusters:
            text += f", accuracy {clusters['accuracy']:.2%}, NMI {clusters['nmi']:.3f}"
        figures.append(("clustering", text))
    anomalies = _read_json(run / "anomalies" / "metrics.json")
    if anomalies:
        text = f"{anomalies['n_anomalies']} of {anomalies['n_images']} flagged ({anomalies['score']} score)"
        truth = anomalies.get("truth") or {}
        if truth.get("auroc") is not None:
            text += f", AUROC {truth['auroc']:.3f}"
        figures.append(("anomalies", text))
    denoise = _read_json(run / "denoise" / "metrics.json")
    if denoise and "psnr_db" in denoise:
        figures.append(("denoising PSNR", f"{denoise['psnr_db']['before']:.2f} → {denoise['psnr_db']['after']:.2f} dB "
                                          f"(SSIM {denoise['ssim']['before']:.3f} → {denoise['ssim']['after']:.3f})"))
    return figures


def _outputs(run: Path, name: str) -> list:
    target = run / LAYOUT[name].output
    if target.is_file():
        return [target]
    if target.is_dir():
        files = sorted(p for p in target.rglob("*") if p.is_file() and not p.name.startswith("."))
        if (target / "images").is_dir():  # one link to an image folder rather than one per image
            files = [p for p in files if p.parent == target] + [target / "images"]
        return files
    return []


def _link(run: Path, path: Path) -> str:
    relative = html.escape(path.relative_to(run).as_posix())
    return f'<a href="{relative}">{html.escape(path.name)}</a>'


def _embedded(path: Path, alt: str, width: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" style="max-width:min(100%,{width})" src="data:image/png;base64,{data}">'


def _section_of(run: Path, name: str) -> Section:
    build = (LAYOUT[name].section if name in LAYOUT else None) or SECTIONS.get(name)
    return build(run) if build else Section(name)


def _section_html(run: Path, name: str) -> str:
    section = _section_of(run, name)
    parts = [f'<section id="{html.escape(name)}"><h2>{html.escape(section.title)}</h2>']
    parts += [f"<p>{html.escape(text)}</p>" for text in section.sentences]
    for path, caption, width in section.figures:
        if path.exists():
            parts.append(f"<figure>{_embedded(path, path.stem.replace('_', ' '), width)}"
                         f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    files = _outputs(run, name)
    if files:
        parts.append(f'<p class="files">Files: {" ".join(_link(run, p) for p in files)}</p>')
    return "".join(parts) + "</section>"


def _shown(value) -> str:
    """A data source or pipeline file by name, without the machine's folders."""
    path = Path(str(value))
    return path.name if path.is_absolute() else str(value)


def write_index(run: Path, state: dict, pipeline) -> Path:
    order = [n for n in state.get("order", []) if state["steps"].get(n, {}).get("status") == "done"]
    figures = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>" for k, v in key_figures(run))
    nav = " ".join(f'<a href="#{html.escape(n)}">{html.escape(_section_of(run, n).title)}</a>' for n in order)
    rows = []
    for name in state.get("order", []):
        info = state["steps"].get(name, {})
        status = info.get("status", "?") + (" (skipped: unchanged)" if info.get("skipped") else "")
        seconds = f"{info['seconds']:.1f}" if "seconds" in info else ""
        options = " ".join([*(f"{k}: {_shown(v)}" for k, v in info.get("options", {}).items()),
                            *(_shown(a) for a in info.get("args", []))])
        rows.append(f"<tr><td>{html.escape(name)}</td><td>{html.escape(status)}</td><td class=num>{seconds}</td>"
                    f"<td><code>{html.escape(options)}</code></td></tr>")
    versions = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>"
                       for k, v in state.get("versions", {}).items())
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>vaetools run: {html.escape(run.name)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{PAGE_STYLE}</style></head>
<body>
<h1>vaetools run: {html.escape(run.name)}</h1>
<p class="lead">Data: <b>{html.escape(_shown(pipeline.data))}</b>; pipeline: {html.escape(_shown(pipeline.source))}.
Every figure below comes from the files of this folder, which open in any spreadsheet, notebook or image viewer.</p>
<nav>{nav}</nav>
<h2>Key figures</h2>
<table class=summary>{figures or '<tr><td>none yet</td></tr>'}</table>
{''.join(_section_html(run, name) for name in order)}
<h2>Steps</h2>
<table><tr><th>step</th><th>status</th><th>seconds</th><th>options</th></tr>{''.join(rows)}</table>
<h2>Versions</h2>
<table class=summary>{versions}</table>
<p class="note">Written by vaetools; pipeline_state.json beside this page holds the same record.</p>
</body></html>
"""
    with atomic_path(run / INDEX_FILE) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return run / INDEX_FILE
