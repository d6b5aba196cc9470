"""report.html: one self-contained page (images inlined as data URIs) that opens from disk offline."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from vae_tools.atomic import atomic_path
from vaetools_pipelines.figures import new_figure

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:1100px;color:#222;padding:0 1rem}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd;padding-bottom:.3rem}
table{border-collapse:collapse;font-size:.9rem}td,th{border:1px solid #ddd;padding:.3rem .6rem;text-align:left}
th{background:#f4f4f4}.num{text-align:right;font-variant-numeric:tabular-nums}
img.px{image-rendering:pixelated;width:84px;height:84px;border:1px solid #ccc;background:#000}
.summary td:first-child{font-weight:600}.note{color:#666;font-size:.85rem}
tr.below td{color:#888}tr.below img{opacity:.6}
"""


def png_data_uri(array: np.ndarray) -> str:
    """CHW floats in [0, 1] -> data:image/png;base64,..."""
    pixels = np.round(np.clip(array, 0, 1) * 255).astype(np.uint8)
    pixels = pixels[0] if pixels.shape[0] == 1 else pixels.transpose(1, 2, 0)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def figure_data_uri(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def histogram_uri(scores: np.ndarray, threshold: float, score_name: str) -> str:
    fig, ax = new_figure((7, 3.2))
    ax.hist(scores, bins=60, color="#4060a0")
    ax.axvline(threshold, color="#c03030", linestyle="--", label=f"threshold {threshold:.4g}")
    ax.set_xlabel(f"{score_name} score (higher = more anomalous)")
    ax.set_ylabel("images")
    ax.legend(frameon=False)
    return figure_data_uri(fig)


HEADINGS = {"auroc": "AUROC", "average_precision": "average precision", "f1_at_threshold": "F1 at the threshold",
            "n_true_anomalies": "true anomalies", "n_flagged": "flagged", "true_positives": "true anomalies flagged",
            "false_positives": "normal images flagged", "share_flagged": "share flagged", "mean_score": "mean score",
            "median_score": "median score"}


def heading(name) -> str:
    """A column or key as words: share_flagged -> share flagged."""
    return HEADINGS.get(str(name), str(name).replace("_", " "))


def _table(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(heading(c))}</th>" for c in frame.columns)
    rows = []
    for _, row in frame.iterrows():
        cells = []
        for value in row:
            if isinstance(value, (float, np.floating)):
                cells.append(f'<td class="num">{value:.4g}</td>')
            elif isinstance(value, (int, np.integer)):
                cells.append(f'<td class="num">{value}</td>')
            else:
                cells.append(f"<td>{html.escape(str(value))}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def write_report(path: Path, table: pd.DataFrame, summary: dict, metrics: dict | None, top: list[dict],
                 score_name: str, threshold: float) -> Path:
    """``top``: dicts with rank, id, label, score, input, reconstruction, difference (CHW arrays)."""
    summary_rows = "".join(f"<tr><td>{html.escape(heading(k))}</td><td>{html.escape(str(v))}</td></tr>"
                           for k, v in summary.items())
    metric_rows = ""
    if metrics:
        metric_rows = "<h2>Against the ground truth</h2><table class=summary>" + "".join(
            f"<tr><td>{html.escape(heading(k))}</td><td>{html.escape(v if isinstance(v, str) else ('n/a' if v is None else f'{v:.4g}'))}</td></tr>"
            for k, v in metrics.items() if not isinstance(v, (dict, list))) + "</table>"
    anomaly_rows = []
    for item in top:
        flagged = item["score"] > threshold
        anomaly_rows.append(
            f'<tr class="{"flagged" if flagged else "below"}">'
            f'<td class="num">{item["rank"]}</td><td>{html.escape(str(item["id"]))}</td>'
            f'<td>{html.escape(str(item["label"]))}</td><td class="num">{item["score"]:.4g}</td>'
            f'<td>{"flagged" if flagged else "below the threshold"}</td>'
            f'<td><img class="px" alt="input" src="{png_data_uri(item["input"])}"></td>'
            f'<td><img class="px" alt="reconstruction" src="{png_data_uri(item["reconstruction"])}"></td>'
            f'<td><img class="px" alt="difference" src="{png_data_uri(item["difference"])}"></td>'
            "</tr>")
    n_flagged = sum(item["score"] > threshold for item in top)
    per_label = ""
    if "label" in table.columns:
        stats = table.groupby(table["label"].astype(str)).agg(
            images=("score", "size"), flagged=("is_anomaly", "sum"), mean_score=("score", "mean"),
            median_score=("score", "median")).reset_index()
        stats["share_flagged"] = (stats["flagged"] / stats["images"]).map(lambda v: f"{v:.1%}")
        per_label = "<h2>Per label</h2>" + _table(stats[["label", "images", "flagged", "share_flagged", "mean_score",
                                                         "median_score"]])
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>vaetools anomaly report</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style></head>
<body>
<h1>Anomaly report</h1>
<table class=summary>{summary_rows}</table>
{metric_rows}
<h2>Scores</h2>
<img alt="score histogram" src="{histogram_uri(table['score'].to_numpy(), threshold, score_name)}">
<h2>The {len(top)} highest scores</h2>
<p class="note">{n_flagged} of these {len(top)} score above the threshold ({threshold:.4g}) and are flagged; the
others (greyed) are the next most unusual images. Each row: the image, the VAE's reconstruction, and
the absolute difference (bright = badly explained).</p>
<table><tr><th>rank</th><th>id</th><th>label</th><th>score</th><th>verdict</th><th>image</th><th>reconstruction</th><th>difference</th></tr>
{''.join(anomaly_rows)}</table>
{per_label}
<p class="note">Written by vaetools. The full table is anomalies.csv beside this file.</p>
</body></html>
"""
    with atomic_path(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return path
