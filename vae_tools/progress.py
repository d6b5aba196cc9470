"""Progress of long work: a live bar on a terminal; in a log file or CI, one plain line now and then
instead of thousands of carriage-return redraws."""

from __future__ import annotations

import sys
import time
from typing import Iterable, Optional, TextIO

from tqdm.auto import tqdm

LOG_EVERY_SECONDS = 30.0


def progress(iterable: Iterable, *, desc: str, total: Optional[int] = None, enabled: bool = True,
             unit: str = "it", stream: Optional[TextIO] = None):
    """``iterable``, reporting its progress on ``stream`` (standard error) when ``enabled``. The
    result has tqdm's ``set_postfix`` either way."""
    stream = stream or sys.stderr
    if not enabled:
        return _Lines(iterable, desc, total, unit, stream, every=None)
    if getattr(stream, "isatty", lambda: False)():
        return tqdm(iterable, desc=desc, total=total, unit=unit, leave=False, file=stream)
    return _Lines(iterable, desc, total, unit, stream, every=LOG_EVERY_SECONDS)


class _Lines:
    def __init__(self, iterable, desc, total, unit, stream, every):
        self.iterable, self.desc, self.unit, self.stream, self.every = iterable, desc, unit, stream, every
        self.total = total if total is not None else (len(iterable) if hasattr(iterable, "__len__") else None)
        self.postfix = ""

    def set_postfix(self, **values) -> None:
        self.postfix = ", ".join(f"{k} {v}" for k, v in values.items())

    def __iter__(self):
        if self.every is None:
            yield from self.iterable
            return
        started = last = time.monotonic()
        for done, item in enumerate(self.iterable, start=1):
            yield item
            now = time.monotonic()
            if now - last >= self.every:
                last = now
                self._line(done, now - started)

    def _line(self, done: int, seconds: float) -> None:
        of = f"/{self.total}" if self.total else ""
        share = f" ({done / self.total:.0%})" if self.total else ""
        left = f", about {seconds / done * (self.total - done):.0f}s left" if self.total and done < self.total else ""
        extra = f"; {self.postfix}" if self.postfix else ""
        print(f"{self.desc}: {done}{of} {self.unit}{share} after {seconds:.0f}s{left}{extra}", file=self.stream,
              flush=True)


def note(text: str, enabled: bool = True, stream: Optional[TextIO] = None) -> None:
    """One line of news about long work (a plan, a stage done), on standard error when ``enabled``."""
    if enabled:
        print(text, file=stream or sys.stderr, flush=True)
