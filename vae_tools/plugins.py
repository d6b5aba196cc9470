"""Objects that other installed distributions add through an entry-point group (steps, scores).

Another distribution's mistake must not stop vaetools: an entry point that fails to import, names
an object of the wrong type, or takes a name vaetools already has is left out with one warning
naming it, and everything else keeps working."""

from __future__ import annotations

import warnings
from importlib.metadata import entry_points
from typing import Callable, Iterator


class PluginWarning(UserWarning):
    """An entry point of another distribution that vaetools leaves out."""


def load_plugins(group: str, kind: type, taken: Callable[[str], bool], what: str) -> Iterator:
    """Each object of the entry-point ``group`` that loads, is a ``kind`` and whose ``name`` is not
    ``taken``. ``what`` names one in the warnings ("step", "anomaly score")."""
    for point in entry_points(group=group):
        where = f"the {what} {point.name!r} from {point.value} ({group})"
        try:
            found = point.load()
        except Exception as exc:  # noqa: BLE001 - whatever another distribution raises
            warnings.warn(f"{where} is left out: it cannot be loaded ({type(exc).__name__}: {exc})", PluginWarning,
                          stacklevel=2)
            continue
        if not isinstance(found, kind):
            warnings.warn(f"{where} is left out: it is a {type(found).__name__}, not a vaetools {kind.__name__}",
                          PluginWarning, stacklevel=2)
            continue
        if taken(found.name):
            warnings.warn(f"{where} is left out: vaetools already has a {what} called {found.name!r}",
                          PluginWarning, stacklevel=2)
            continue
        yield found
