"""How the command line ends when the user stops it: exit status 130, and the exact line that continues."""

from __future__ import annotations

import shlex

import click

from vaetools_pipelines.launch import INTERRUPTED_STATUS, interrupt_taken


class Interrupted(click.ClickException):
    exit_code = INTERRUPTED_STATUS

    def __init__(self, message: str):
        interrupt_taken()  # saying how the command ends is taking the interrupt
        super().__init__(message)


def command_line(*words) -> str:
    """``vaetools WORDS...`` quoted so that it can be pasted into a shell as it is."""
    return shlex.join(["vaetools", *(str(w) for w in words)])
