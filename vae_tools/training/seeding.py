"""Seeded work that leaves the caller's random numbers alone."""

from __future__ import annotations

import functools

import torch


def keeps_global_rng(function):
    """Run ``function`` on a fork of torch's global random state: it may seed and draw as it likes
    (model initialisation draws from the global generator), and the caller's next draws are the ones
    they would have been without the call."""

    @functools.wraps(function)
    def forked(*args, **kwargs):
        devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
        with torch.random.fork_rng(devices=devices):
            return function(*args, **kwargs)

    return forked
