"""Open a local HTML file in headless Chromium (Playwright driving the system's browser)."""

import os
import shutil

import pytest

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


def chromium_path():
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def open_page(path, screenshot=None, width=1280):
    """Returns (image states, console errors, failed requests, title). Skips when no browser is installed,
    unless VAETOOLS_REQUIRE_BROWSER=1 (set by .ci/run, which installs one). With ``screenshot``, also
    saves a full-page PNG there and records the page's layout in ``open_page.layout``: the widest
    element's right edge and the viewport width (a wider element means horizontal scrolling)."""
    executable = chromium_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        executable = None
    if executable is None:
        if os.environ.get("VAETOOLS_REQUIRE_BROWSER") == "1":
            pytest.fail("VAETOOLS_REQUIRE_BROWSER=1 but Chromium or playwright is not installed")
        pytest.skip("headless Chromium (and the playwright package) not installed")
    errors, failed = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        try:
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("requestfailed", lambda request: failed.append(request.url))
            page.goto(path.resolve().as_uri(), wait_until="load")
            images = page.evaluate("Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth])")
            external = page.evaluate(
                "Array.from(document.querySelectorAll('[src],[href]')).map(e => e.getAttribute('src') || e.getAttribute('href'))")
            title = page.title()
            if screenshot is not None:
                open_page.layout = page.evaluate(
                    "({widest: Math.max(...Array.from(document.querySelectorAll('body *'))"
                    ".map(e => e.getBoundingClientRect().right)), viewport: window.innerWidth, "
                    "scroll: document.documentElement.scrollWidth})")
                page.screenshot(path=str(screenshot), full_page=True)
                # Printed on A4 (794 CSS pixels wide at 96 dpi): nothing may stick out of the page.
                page.emulate_media(media="print")
                page.set_viewport_size({"width": 794, "height": 1123})
                open_page.print_layout = page.evaluate(
                    "({widest: Math.max(...Array.from(document.querySelectorAll('body *'))"
                    ".filter(e => getComputedStyle(e).display !== 'none')"
                    ".map(e => e.getBoundingClientRect().right)), viewport: window.innerWidth})")
        finally:
            browser.close()
    return images, errors, failed, external, title
