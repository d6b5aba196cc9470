"""vaetools as a user installs it: a wheel built the way a release builds it, installed into a fresh
virtual environment and run from a folder with no source tree on the path."""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

import vae_tools

ROOT = Path(__file__).resolve().parents[1]
# What a source distribution carries: the packaging files and the folders that become packages.
SOURCE_FILES = ("pyproject.toml", "setup.py", "README.md")
SOURCE_FOLDERS = {"vae_tools": "vae_tools", "pipelines": "vaetools_pipelines", "configs": "vae_tools/presets"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Built from a copy of the sources, so no build/ folder or egg-info of the checkout leaks in."""
    source = tmp_path_factory.mktemp("source")
    for name in SOURCE_FILES:
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, source / name)
    for folder in SOURCE_FOLDERS:
        shutil.copytree(ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
                    "--wheel-dir", str(out), str(source)], check=True, capture_output=True, text=True)
    (built,) = out.glob("vaetools-*.whl")
    return built


def expected_wheel_files() -> set:
    """Every module of the checkout and every preset, by the path it must have inside the wheel."""
    expected = set()
    for folder, package in SOURCE_FOLDERS.items():
        pattern = "**/*.yaml" if folder == "configs" else "**/*.py"
        for path in (ROOT / folder).glob(pattern):
            if "__pycache__" not in path.parts:
                expected.add(f"{package}/{path.relative_to(ROOT / folder).as_posix()}")
    return expected


def test_the_wheel_holds_every_module_and_preset(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = expected_wheel_files()
    assert "vae_tools/generation/summary.py" in expected and "vae_tools/presets/pipelines/demo.yaml" in expected
    assert sorted(expected - names) == []
    assert not any(name.startswith("pipelines/") for name in names), "the CLI must not install as 'pipelines'"
    assert wheel.name.startswith(f"vaetools-{vae_tools.__version__}-")
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "vaetools = vaetools_pipelines.launch:main" in entry_points


def fresh_environment(wheel: Path, home: Path) -> Path:
    """A new virtual environment holding only the wheel; the dependencies already installed here
    are reached through a .pth file instead of being downloaded again. A .pth file inside them (an
    editable install of this checkout) is not read there, since they are not a site folder of it."""
    venv = home / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                             check=True, capture_output=True, text=True).stdout.strip()
    ours = {sysconfig.get_path("purelib"), *site.getsitepackages()}
    Path(purelib, "vaetools_test_dependencies.pth").write_text("\n".join(sorted(ours)) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
                    "--no-index", str(wheel)], check=True, capture_output=True, text=True)
    return venv


def test_an_installed_wheel_trains_embeds_scores_samples_and_runs_a_pipeline(wheel, tmp_path):
    venv = fresh_environment(wheel, tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(OMP_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")

    def vaetools(*args: str) -> str:
        done = subprocess.run([str(venv / "bin" / "vaetools"), *args], cwd=work, env=env, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, f"vaetools {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    where = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "import vae_tools, vaetools_pipelines; print(vae_tools.__file__); "
                            "print(vaetools_pipelines.__file__)"],
                           cwd=work, env=env, capture_output=True, text=True, check=True).stdout.split()
    assert all(Path(p).is_relative_to(venv) for p in where), where
    assert "label-propagate" in vaetools("--help")
    assert vaetools("--version").strip() == f"vaetools, version {vae_tools.__version__}"
    vaetools("train", "--data", "digits", "--epochs", "1", "--out", "run", "--quiet")
    assert (work / "run" / "latent_summary.safetensors").is_file()
    vaetools("embed", "--model", "run", "--data", "digits", "--out", "latents.parquet", "--quiet")
    vaetools("anomalies", "--model", "run", "--data", "digits", "--out", "anomalies", "--quiet")
    vaetools("sample", "--model", "run", "--out", "samples", "--n", "8")
    vaetools("interpolate", "--model", "run", "--data", "digits", "--out", "paths", "--pairs", "1", "--steps", "3")
    for path in ("latents.parquet", "anomalies/anomalies.csv", "anomalies/report.html", "samples/samples.npz",
                 "paths/interpolations.npz"):
        assert (work / path).stat().st_size > 0, path
    (work / "two_steps.yaml").write_text("data: digits\nsteps:\n  - train: {epochs: 1}\n  - embed\n")
    vaetools("run", "two_steps.yaml", "--out", "pipeline", "--quiet")
    assert (work / "pipeline" / "model" / "model.safetensors").is_file()
    assert (work / "pipeline" / "embeddings.parquet").stat().st_size > 0
    assert (work / "pipeline" / "index.html").is_file()
