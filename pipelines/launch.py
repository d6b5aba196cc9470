"""The ``vaetools`` command's entry point. It imports nothing heavy itself, so that a Ctrl-C while
Python is still importing the command (torch, click, the steps) ends as every other interrupt
does: one line and exit status 130, never a traceback.

It also makes Ctrl-C exact. Python raises KeyboardInterrupt wherever the interpreter happens to be,
and where that is a finaliser (``__del__``, a garbage-collector callback) the exception is printed
as "ignored" and dropped, so the command would go on as if nothing had happened (seen on a busy
machine: a pipeline finished its training after the user had stopped it). Here an interrupt stays
pending, raised again every two seconds, until the command has taken it (``interrupt_taken``); and
it is never raised inside an import (see ``_raise_when_safe``)."""

from __future__ import annotations

import os
import signal
import sys

INTERRUPTED_STATUS = 130  # the shell's convention for a process ended by SIGINT
RAISE_AGAIN_SECONDS = 2.0  # long enough for the clean-up of a taken interrupt to finish first
LOOK_AGAIN_SECONDS = 0.05  # while an import runs

_pending = False
_installed = False


def _on_interrupt(signum, frame):
    global _pending
    _pending = True
    _raise_when_safe(frame)


def _raise_again(signum, frame):
    if not _pending:
        signal.setitimer(signal.ITIMER_REAL, 0)
        return
    _raise_when_safe(frame)


def _raise_when_safe(frame) -> None:
    """Raise KeyboardInterrupt, except inside an import: an extension module's initialisation cannot
    unwind from one (pybind11 then ends the process with SIGABRT, seen while torch loaded), so
    there it is raised a moment later, once the import is done."""
    if _importing(frame):
        signal.setitimer(signal.ITIMER_REAL, LOOK_AGAIN_SECONDS)
        return
    signal.setitimer(signal.ITIMER_REAL, RAISE_AGAIN_SECONDS, RAISE_AGAIN_SECONDS)
    raise KeyboardInterrupt


def _importing(frame) -> bool:
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


def interrupt_taken() -> None:
    """The command has caught the interrupt and is ending: raise it no more."""
    global _pending
    _pending = False
    if _installed:
        signal.setitimer(signal.ITIMER_REAL, 0)


def _install() -> None:
    global _installed
    if hasattr(signal, "setitimer"):
        signal.signal(signal.SIGALRM, _raise_again)
        signal.signal(signal.SIGINT, _on_interrupt)
        _installed = True


def main() -> None:
    try:
        _install()
        from vaetools_pipelines.cli import main as command

        command()
    except KeyboardInterrupt:  # before the command could take it (imports) or after it ended
        interrupt_taken()
        sys.stderr.write("Error: interrupted while starting or ending; no file was left half-written\n")
        _leave(INTERRUPTED_STATUS)
    except SystemExit as exc:
        if exc.code == INTERRUPTED_STATUS:
            _leave(INTERRUPTED_STATUS)
        raise


def _leave(status: int) -> None:
    """End with ``status`` once the command has cleaned up. An interrupt that landed inside code a
    library ran through PyRun_String (pybind11's exec does) leaves CPython's "unhandled
    KeyboardInterrupt" mark set, and the interpreter would then end by SIGINT (-2) after the command
    had caught the interrupt and said how to go on; on a busy machine that happened."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
