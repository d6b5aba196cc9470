"""Progress reports: a bar on a terminal, plain occasional lines in a log, nothing when off."""

import io

import vae_tools.progress as progress_module
from vae_tools.progress import progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_log_gets_plain_lines_and_no_carriage_returns(monkeypatch):
    monkeypatch.setattr(progress_module, "LOG_EVERY_SECONDS", 0.0)
    log = io.StringIO()
    bar = progress(range(4), desc="embedding", unit="batch", stream=log)
    bar.set_postfix(loss="1.50")
    assert list(bar) == [0, 1, 2, 3]
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue() and len(lines) == 4
    assert lines[-1].startswith("embedding: 4/4 batch (100%) after") and lines[-1].endswith("; loss 1.50")
    assert "s left" in lines[0] and "left" not in lines[-1]  # an estimate of the rest while there is a rest


def test_a_log_is_quiet_between_reports():
    log = io.StringIO()
    assert list(progress(range(1000), desc="x", stream=log)) == list(range(1000))
    assert log.getvalue() == ""  # far less than LOG_EVERY_SECONDS went by


def test_a_terminal_gets_a_live_bar_and_off_means_silent():
    screen = Terminal()
    assert list(progress(range(3), desc="epoch 1/3", stream=screen)) == [0, 1, 2]
    assert "epoch 1/3" in screen.getvalue()
    silent = io.StringIO()
    bar = progress(range(3), desc="x", enabled=False, stream=silent)
    bar.set_postfix(a=1)
    assert list(bar) == [0, 1, 2] and silent.getvalue() == ""
