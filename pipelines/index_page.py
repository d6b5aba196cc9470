"""index.html in a run folder: every step's outputs, the key figures, configuration, versions and timings."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

from pipelines.anomaly_report import STYLE
from pipelines.steps import LAYOUT
from vae_tools.atomic import atomic_path

INDEX_FILE = "index.html"


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


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


def _embedded(path: Path, alt: str, width: str = "100%") -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" style="max-width:{width}" src="data:image/png;base64,{data}">'


def _picture(run: Path) -> str:
    umap_dir = run / "umap"
    for name in ("umap_label.png", "umap.png", "umap_predicted_label.png"):
        if (umap_dir / name).exists():
            return "<h2>UMAP of the latent space</h2>" + _embedded(umap_dir / name, "UMAP")
    return ""


GENERATED = (
    ("samples/samples.png", "New images drawn by the model", "Codes drawn from a Gaussian mixture fitted to the "
     "training images' latent codes, decoded. Blurry or broken shapes mean the model has not learned the data "
     "well enough to generate it.", "480px"),
    ("interpolations/interpolations.png", "Interpolation between pairs of images", "Each row starts and ends with "
     "a real image; between them, decoded codes on the spherical path joining their latent codes. Smooth "
     "changes mean a continuous latent space, which is what label propagation and clustering rely on.", "100%"),
)


def _generated(run: Path) -> str:
    parts = [f"<h3>{html.escape(title)}</h3><p>{html.escape(text)}</p>{_embedded(run / name, title, width)}"
             for name, title, text, width in GENERATED if (run / name).exists()]
    return "<h2>What the model generates</h2>" + "".join(parts) if parts else ""


def write_index(run: Path, state: dict, pipeline) -> Path:
    figures = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>" for k, v in key_figures(run))
    rows = []
    for name in state.get("order", []):
        info = state["steps"].get(name, {})
        links = "<br>".join(
            f'<a href="{html.escape(p.relative_to(run).as_posix())}">{html.escape(p.relative_to(run).as_posix())}</a>'
            for p in _outputs(run, name))
        status = info.get("status", "?") + (" (skipped: unchanged)" if info.get("skipped") else "")
        seconds = f"{info['seconds']:.1f}" if "seconds" in info else ""
        rows.append(f"<tr><td>{html.escape(name)}</td><td>{html.escape(status)}</td><td class=num>{seconds}</td>"
                    f"<td><code>{html.escape(' '.join(info.get('args', [])))}</code></td><td>{links}</td></tr>")
    versions = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>"
                       for k, v in state.get("versions", {}).items())
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>vaetools run: {html.escape(run.name)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style></head>
<body>
<h1>vaetools run: {html.escape(run.name)}</h1>
<table class=summary><tr><td>data</td><td>{html.escape(str(pipeline.data))}</td></tr>
<tr><td>pipeline</td><td>{html.escape(str(pipeline.source))}</td></tr></table>
<h2>Key figures</h2>
<table class=summary>{figures or '<tr><td>none yet</td></tr>'}</table>
{_picture(run)}
{_generated(run)}
<h2>Steps</h2>
<table><tr><th>step</th><th>status</th><th>seconds</th><th>options</th><th>outputs</th></tr>{''.join(rows)}</table>
<h2>Versions</h2>
<table class=summary>{versions}</table>
<p class="note">Written by vaetools; pipeline_state.json beside this page holds the same record.</p>
</body></html>
"""
    with atomic_path(run / INDEX_FILE) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return run / INDEX_FILE
