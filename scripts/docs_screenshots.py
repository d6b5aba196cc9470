"""Screenshots of a demo run's index.html and anomaly report for docs/ (what a user gets, shown in
the README). Needs headless Chromium and the playwright package.

    vaetools demo --out runs/demo && python scripts/docs_screenshots.py runs/demo
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image
from playwright.sync_api import sync_playwright

DOCS = Path(__file__).resolve().parents[1] / "docs"
WIDTH = 1100  # the page's own max width: no margins wasted
HALF = 2  # saved at half size: readable, and small enough to keep in git


def shoot(page, source: Path, target: Path) -> None:
    page.goto(source.resolve().as_uri(), wait_until="load")
    page.screenshot(path=str(target), full_page=True)
    picture = Image.open(target)
    picture = picture.resize((picture.width // HALF, picture.height // HALF), Image.Resampling.LANCZOS)
    picture.convert("P", palette=Image.Palette.ADAPTIVE, colors=256).save(target, optimize=True)
    print(f"{target}: {picture.width}x{picture.height}, {target.stat().st_size // 1024} KiB")


def main(run: str) -> None:
    run_dir = Path(run)
    DOCS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": WIDTH, "height": 900})
        shoot(page, run_dir / "index.html", DOCS / "demo_index.png")
        shoot(page, run_dir / "anomalies" / "report.html", DOCS / "demo_anomaly_report.png")
        browser.close()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/demo")
