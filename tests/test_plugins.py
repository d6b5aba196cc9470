"""Another distribution's steps and scores cannot break the built-ins: a plugin that fails to load,
is of the wrong type, takes a built-in's name or gives NaN is one line naming it, and every other
command, --help and --version keep working."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from conftest import invoke, make_images, tiny_training


def installed_plugin(site: Path, group: str, name: str, module_text: str, reference: str) -> None:
    """A distribution with one entry point in ``group``, installed into the folder ``site``."""
    module = f"plugin_{abs(hash((group, name, reference))) % 10**8}"
    (site / f"{module}.py").write_text(textwrap.dedent(module_text))
    info = site / f"{module}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{group}]\n{name} = {module}:{reference}\n")


def vaetools(site: Path, *words) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "vaetools_pipelines", *map(str, words)], capture_output=True,
                          text=True, env=env, timeout=120)


BROKEN = "raise RuntimeError('this plugin is broken')\n"


@pytest.mark.parametrize("group", ["vaetools.steps", "vaetools.scores"])
def test_a_plugin_that_fails_to_import_leaves_every_command_working(tmp_path, group):
    installed_plugin(tmp_path, group, "broken", BROKEN, "THING")
    for words, shows in ((["--version"], "vaetools, version"), (["--help"], "Commands:"),
                         (["anomalies", "--help"], "--score"), (["sample", "--help"], "--n")):
        done = vaetools(tmp_path, *words)
        assert done.returncode == 0 and shows in done.stdout, done.stdout + done.stderr
        warnings = [line for line in done.stderr.splitlines() if line.strip()]
        assert len(warnings) <= 1 and "Traceback" not in done.stderr, done.stderr
        if warnings:  # the scores load when a command asks for them; the steps at once
            assert warnings[0].startswith("Warning:") and "'broken'" in warnings[0] and "this plugin is broken" in \
                warnings[0]
    assert "Warning:" in vaetools(tmp_path, "anomalies", "--help").stderr


def test_plugins_of_the_wrong_type_or_a_built_ins_name_are_left_out_with_a_warning(tmp_path):
    installed_plugin(tmp_path, "vaetools.scores", "odd", "THING = 42\n", "THING")
    installed_plugin(tmp_path, "vaetools.scores", "knn", """
        from vae_tools.anomaly.score_registry import Score
        THING = Score("knn", "an impostor", (), lambda parts, latents, state: None)
    """, "THING")
    installed_plugin(tmp_path, "vaetools.steps", "embed", """
        import dataclasses
        from vaetools_pipelines.embed_step import STEP
        THING = dataclasses.replace(STEP, help="an impostor")
    """, "THING")
    done = vaetools(tmp_path, "anomalies", "--help")
    assert done.returncode == 0 and "an impostor" not in done.stdout, done.stdout + done.stderr
    lines = done.stderr.splitlines()
    assert any("'odd'" in line and "not a vaetools Score" in line for line in lines), done.stderr
    assert any("'knn'" in line and "already has" in line for line in lines), done.stderr
    assert any("'embed'" in line and "already has" in line for line in lines), done.stderr
    assert all(line.startswith("Warning:") for line in lines), done.stderr
    assert "an impostor" not in vaetools(tmp_path, "embed", "--help").stdout


def test_a_score_that_gives_nan_is_one_error_line_naming_it(tmp_path):
    from vae_tools.anomaly.score_registry import Score, register_score, unregister_score

    images, labels = make_images(n=40, size=12)
    np.savez(tmp_path / "d.npz", x=images, y=labels)
    invoke("train", "--data", tmp_path / "d.npz", "--out", tmp_path / "run", *tiny_training(1))
    register_score(Score("half-nan", "a plugin's", (), lambda parts, latents, state: np.where(
        np.arange(len(latents)) % 2, np.nan, 1.0)))
    try:
        result = invoke("anomalies", "--model", tmp_path / "run", "--data", tmp_path / "d.npz", "--score", "half-nan",
                        "--out", tmp_path / "a", "--quiet", ok=False)
    finally:
        unregister_score("half-nan")
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 1 and len(lines) == 1, result.output
    # first met on the run's reference images (the 36 training images, the validation 4 held out)
    assert "'half-nan' gave 18 of 36 values that are not finite" in lines[0] and "--score" in lines[0]
    assert not (tmp_path / "a").exists()
