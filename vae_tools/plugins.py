"""Objects that other installed distributions add through an entry-point group (steps, scores).

Another distribution's mistake must not stop vaetools: an entry point that fails to import, names
an object of the wrong type, or takes a name vaetools already has is left out with one warning
naming it, and everything else keeps working."""

from __future__ import annotations

import warnings
from importlib.metadata import entry_points
from typing import Callable


class PluginWarning(UserWarning):
    """An entry point of another distribution that vaetools leaves out."""


def register_plugins(group: str, kind: type, taken: Callable[[str], bool], register: Callable, what: str) -> None:
    """``register`` each object of the entry-point ``group`` that loads, is a ``kind``, whose
    ``name`` is not ``taken`` and that ``register`` accepts (it raises ValueError to refuse one).
    ``what`` names one in the warnings ("step", "anomaly score")."""
    for point in entry_points(group=group):
        where = f"the {what} {point.name!r} from {point.value} ({group})"
        try:
            found = point.load()
        except Exception as exc:  # noqa: BLE001 - whatever another distribution raises
            _leave_out(where, f"it cannot be loaded ({type(exc).__name__}: {exc})")
            continue
        if not isinstance(found, kind):
            _leave_out(where, f"it is a {type(found).__name__}, not a vaetools {kind.__name__}")
        elif taken(found.name):
            _leave_out(where, f"vaetools already has a {what} called {found.name!r}")
        else:
            try:
                register(found)
            except ValueError as exc:  # what the registry itself refuses (a step missing a parameter it needs)
                _leave_out(where, str(exc))


def _leave_out(where: str, why: str) -> None:
    warnings.warn(f"{where} is left out: {why}", PluginWarning, stacklevel=3)
