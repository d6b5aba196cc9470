"""Fetch a data set file once into the cache, checksum-verified and written atomically."""

from __future__ import annotations

import hashlib
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

from tqdm.auto import tqdm

from vae_tools.atomic import atomic_path
from vae_tools.errors import DataError

CACHE_ENV = "VAETOOLS_CACHE_DIR"
MIRROR_ENV = "VAETOOLS_DATASET_MIRROR"


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "vaetools").expanduser()


def md5sum(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(base_urls: tuple[str, ...], filename: str, md5: str, target: Path) -> Path:
    """Return ``target``, downloading ``filename`` from the first base URL that serves it if needed.

    ``$VAETOOLS_DATASET_MIRROR`` (a URL, ``file://`` included) is tried before the official hosts.
    """
    if target.exists():
        if md5sum(target) == md5:
            return target
        target.unlink()
    mirror = os.environ.get(MIRROR_ENV)
    bases = ((mirror,) if mirror else ()) + tuple(base_urls)
    failures = []
    for base in bases:
        url = base.rstrip("/") + "/" + filename
        try:
            with atomic_path(target) as tmp:
                _download(url, tmp)
                got = md5sum(tmp)
                if got != md5:
                    raise DataError(f"{url}: checksum mismatch (md5 {got}, expected {md5}); the file was discarded")
            return target
        except (urllib.error.URLError, OSError, ValueError) as exc:
            failures.append(f"{url} ({getattr(exc, 'reason', exc)})")
        except DataError as exc:
            failures.append(str(exc))
    raise DataError(
        f"could not download {filename}: " + "; ".join(failures)
        + f". Put the file in {target.parent} by hand or set {MIRROR_ENV} to a mirror"
    )


def _download(url: str, destination: Path) -> None:
    with urllib.request.urlopen(url, timeout=60) as response, open(destination, "wb") as out:
        total = int(response.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=url.rsplit("/", 1)[-1], leave=False,
                  disable=not sys.stderr.isatty()) as bar:
            for block in iter(lambda: response.read(1 << 16), b""):
                out.write(block)
                bar.update(len(block))
