"""index.html in a run folder: one section per step, each figure with a sentence saying what it
measures and against what, the step's files beside it; then the steps' record and the versions."""

from __future__ import annotations

import base64
import html
from pathlib import Path

from vae_tools.atomic import atomic_path
from vaetools_pipelines.anomaly_report import STYLE
from vaetools_pipelines.sections import Section
from vaetools_pipelines.steps import get_step, is_step, list_steps

INDEX_FILE = "index.html"
PAGE_STYLE = STYLE + """
nav{font-size:.9rem;margin:.5rem 0 1rem}nav a{margin-right:.8rem}
section{margin-bottom:1.5rem}figure{margin:1rem 0}figure img{max-width:100%;height:auto}
figcaption{color:#444;font-size:.9rem;margin-top:.3rem;max-width:60rem}
.files{font-size:.85rem;color:#555}.files a{margin-right:.7rem;white-space:nowrap}
td code{word-break:break-all}.lead{font-size:1rem;color:#333}
@media print{nav{display:none}section,figure{break-inside:avoid}body{margin:0;max-width:none}}
"""


def key_figures(run: Path) -> list:
    """(label, value) pairs from the steps' own key figures, in the steps' order, where they exist."""
    return [figure for name in list_steps() if get_step(name).key_figures for figure in get_step(name).key_figures(run)]


def _outputs(run: Path, name: str) -> list:
    target = run / get_step(name).output
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
    build = get_step(name).section if is_step(name) else None
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
