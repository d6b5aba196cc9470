"""How the command line ends when the user stops it: exit status 130, and the exact line that continues."""

from __future__ import annotations

import shlex

import click


class Interrupted(click.ClickException):
    exit_code = 130  # the shell's convention for a process ended by SIGINT


def command_line(*words) -> str:
    """``vaetools WORDS...`` quoted so that it can be pasted into a shell as it is."""
    return shlex.join(["vaetools", *(str(w) for w in words)])
