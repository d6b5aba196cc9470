"""Command-line value types the steps' options share: checked numbers, image sizes, lists."""

from __future__ import annotations

import math
from typing import Any

import click
import yaml

from vae_tools.errors import ConfigError


class FiniteFloat(click.ParamType):
    """A number that is neither NaN nor infinite (JSON, thresholds and fractions need real numbers),
    optionally inside bounds, each open (excluded) or closed."""

    name = "number"

    def __init__(self, low=None, high=None, open_low=False, open_high=False):
        self.low, self.high, self.open_low, self.open_high = low, high, open_low, open_high

    def convert(self, value, param, ctx):
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        below = self.low is not None and (number <= self.low if self.open_low else number < self.low)
        above = self.high is not None and (number >= self.high if self.open_high else number > self.high)
        if below or above:
            self.fail(f"{value!r} is not in {self._range_text()}", param, ctx)
        return number

    def _range_text(self) -> str:
        left = "(" if self.open_low or self.low is None else "["
        right = ")" if self.open_high or self.high is None else "]"
        low = "-inf" if self.low is None else f"{self.low:g}"
        high = "inf" if self.high is None else f"{self.high:g}"
        return f"the range {left}{low}, {high}{right}"


FINITE = FiniteFloat()


class LabelAmount(click.ParamType):
    """A share of the labels (strictly between 0 and 1) or a count of them (a whole number from 1)."""

    name = "share or count"

    def convert(self, value, param, ctx):
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        if 0 < number < 1:
            return number
        if math.isfinite(number) and number >= 1 and number == int(number):
            return int(number)
        self.fail(f"{value!r} is not in the range (0, 1) of a share, nor a whole number of labels from 1", param, ctx)


def parse_maps(ctx, param, value):
    if value is None or str(value).lower() == "auto":
        return "auto"
    try:
        count = int(value)
    except ValueError:
        raise click.BadParameter(f"{value!r}: use auto or a whole number such as 1 or 5") from None
    if count < 1:
        raise click.BadParameter(f"{value!r}: at least one map is needed")
    return count


MAX_IMAGE_SIDE = 4096  # a 4096x4096 RGB image is 200 MB as float32; larger sides are almost surely a typo


def parse_image_size(value):
    if value is None:
        return None
    text = str(value).lower()
    try:
        parts = [int(v) for v in text.split("x")]
    except ValueError:
        raise click.BadParameter(f"{value!r}: use one number (28) or HEIGHTxWIDTH (28x32)") from None
    if len(parts) not in (1, 2) or min(parts) < 4:
        raise click.BadParameter(f"{value!r}: use one number (28) or HEIGHTxWIDTH (28x32), each at least 4")
    if max(parts) > MAX_IMAGE_SIDE:
        gigabytes = max(parts) ** 2 * 4 / 1e9
        raise click.BadParameter(f"{value!r}: at most {MAX_IMAGE_SIDE} pixels a side (one {max(parts)}-pixel square "
                                 f"grey image alone needs {gigabytes:,.0f} GB as float32)")
    return parts * 2 if len(parts) == 1 else parts


class RegisteredName(click.ParamType):
    """One of the names a registry holds when the command runs (so that one registered later counts)."""

    name = "name"

    def __init__(self, names):
        self.names = names  # () -> the names

    def get_metavar(self, param, *args, **kwargs) -> str:
        return "[" + "|".join(self.names()) + "]"

    def convert(self, value, param, ctx):
        if value not in self.names():
            self.fail(f"{value!r} is not one of {', '.join(self.names())}", param, ctx)
        return value


def comma_list(ctx, param, value):
    return [v.strip() for v in value.split(",") if v.strip()] if value else []


def id_list(ctx, param, value):
    """Repeated options, each possibly a comma-separated list."""
    return [part.strip() for item in value or () for part in str(item).split(",") if part.strip()]


def dims_list(ctx, param, value):
    try:
        return [int(part) for part in id_list(ctx, param, value)]
    except ValueError:
        raise click.BadParameter(f"{', '.join(value)}: give latent dimensions as whole numbers, e.g. 0,3,5") from None


def image_size(ctx, param, value):
    return parse_image_size(value)


def parse_set_option(text: str) -> tuple[str, Any]:
    """``key=value`` from ``--set``; the value is read as YAML (numbers, lists, booleans)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {text!r}: expected key=value")
    try:
        return key.strip().replace("-", "_"), yaml.safe_load(raw)
    except yaml.YAMLError:
        raise ConfigError(f"--set {text!r}: cannot read the value") from None
