"""`vaetools train` and `vaetools embed` on every input format, and their errors."""

import subprocess
from pathlib import Path
import sys

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

from conftest import write_idx
from vae_tools.device_settings import BASE_LR, CPU_BATCH_SIZE, GPU_BATCH_SIZE
from vaetools_pipelines.cli import main


def run_cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def make_source(kind, tmp_path, images, labels):
    if kind == "npz":
        np.savez(tmp_path / "d.npz", x=images, y=labels)
        return tmp_path / "d.npz"
    if kind == "npy":
        np.save(tmp_path / "d.npy", images.astype(np.float32) / 255.0)
        return tmp_path / "d.npy"
    if kind in ("idx", "idx.gz"):
        ending = ".gz" if kind == "idx.gz" else ""
        write_idx(tmp_path / f"labels-idx1-ubyte{ending}", labels.astype(np.uint8))
        return write_idx(tmp_path / f"images-idx3-ubyte{ending}", images)
    if kind == "folder":
        for i, (image, label) in enumerate(zip(images, labels)):
            (tmp_path / "imgs" / str(label)).mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(tmp_path / "imgs" / str(label) / f"{i}.png")
        return tmp_path / "imgs"
    if kind == "csv":
        frame = pd.DataFrame(images.reshape(len(images), -1))
        frame.columns = [f"pixel{i}" for i in range(frame.shape[1])]
        frame.insert(0, "label", labels)
        frame.to_csv(tmp_path / "d.csv", index=False)
        return tmp_path / "d.csv"
    return kind  # a built-in name


@pytest.mark.parametrize("kind", ["npz", "npy", "idx", "idx.gz", "folder", "csv", "digits"])
def test_train_then_embed_on_every_input_format(kind, tmp_path, images_and_labels, fast_overrides):
    images, labels = images_and_labels
    source = make_source(kind, tmp_path, images, labels)
    result = run_cli("train", "--data", source, "--out", tmp_path / "run", *fast_overrides)
    assert result.exit_code == 0, result.output
    assert "best epoch" in result.output
    assert (tmp_path / "run" / "model.safetensors").exists()

    out = tmp_path / "emb.parquet"
    result = run_cli("embed", "--model", tmp_path / "run", "--data", source, "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    frame = pd.read_parquet(out)
    expected_rows = 1797 if kind == "digits" else 60
    assert len(frame) == expected_rows
    assert [c for c in frame.columns if c.startswith("mu_")] == ["mu_0", "mu_1", "mu_2", "mu_3"]
    assert frame["id"].is_unique and np.isfinite(frame.filter(like="mu_").to_numpy()).all()
    has_labels = kind != "npy"
    assert ("label" in frame.columns) == has_labels
    if kind == "folder":
        assert frame["id"].iloc[0] == "0/0.png"


@pytest.mark.parametrize("suffix", [".csv", ".npz", ".parquet"])
def test_embed_output_formats_with_logvar_and_elbo(suffix, tmp_path, npz_file, fast_overrides):
    run_cli("train", "--data", npz_file, "--out", tmp_path / "run", *fast_overrides)
    out = tmp_path / f"emb{suffix}"
    result = run_cli("embed", "--model", tmp_path / "run", "--data", npz_file, "--out", out, "--logvar", "--elbo",
                     "--elbo-samples", "3", "--quiet")
    assert result.exit_code == 0, result.output
    from vae_tools.tables import read_table

    frame = read_table(out)
    assert len(frame) == 60 and frame["id"].tolist()[:3] == ["0", "1", "2"]
    assert {"mu_3", "logvar_3", "neg_elbo", "recon_nll", "kl"} <= set(frame.columns)
    np.testing.assert_allclose(frame["neg_elbo"], frame["recon_nll"] + frame["kl"], rtol=1e-5)
    assert (frame["kl"] >= 0).all()


def test_resume_and_overrides_from_the_command_line(tmp_path, npz_file, fast_overrides):
    run = tmp_path / "run"
    assert run_cli("train", "--data", npz_file, "--out", run, *fast_overrides).exit_code == 0
    result = run_cli("train", "--data", npz_file, "--out", run, "--resume", "--epochs", "3", "--quiet")
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(run / "history.csv")) == 3
    result = run_cli("train", "--data", npz_file, "--out", run, "--resume", "--latent-dim", "9", "--quiet")
    assert result.exit_code != 0 and "cannot change latent_dim" in result.output


@pytest.mark.parametrize("args, message", [
    (["train", "--data", "{tmp}/missing.npz", "--out", "{tmp}/run"], "missing.npz: no such file or folder"),
    (["train", "--data", "{tmp}/bad.npz", "--out", "{tmp}/run"], "bad.npz: not a readable .npz file"),
    (["train", "--data", "digits", "--out", "{tmp}/run", "--set", "nonsense=1"], "unknown option 'nonsense'"),
    (["train", "--data", "digits", "--out", "{tmp}/run", "--noise", "blur:1", "--model", "denoising"], "unknown noise"),
    (["train", "--data", "digits", "--out", "{tmp}/run", "--image-size", "big"], "use one number"),
    (["embed", "--model", "{tmp}", "--data", "digits", "--out", "{tmp}/e.parquet"], "not a vaetools run folder"),
    (["embed", "--model", "{tmp}/nope", "--data", "digits", "--out", "{tmp}/e.parquet"], "no such run folder"),
    (["embed", "--model", "{tmp}", "--data", "digits", "--out", "{tmp}/e.xlsx"], "must end in .parquet, .csv, .npz"),
])
def test_user_errors_exit_non_zero_with_one_line_and_write_nothing(args, message, tmp_path):
    (tmp_path / "bad.npz").write_bytes(b"garbage")
    result = CliRunner().invoke(main, [a.format(tmp=tmp_path) for a in args])
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "run" / "model.safetensors").exists()
    assert not (tmp_path / "e.parquet").exists()


def test_installed_command_prints_one_line_without_traceback(tmp_path):
    process = subprocess.run(
        [sys.executable, "-m", "vaetools_pipelines.cli", "train", "--data", str(tmp_path / "none.npz"), "--out", str(tmp_path / "r")],
        capture_output=True, text=True,
    )
    assert process.returncode == 1
    assert process.stderr.strip().count("\n") == 0
    assert process.stderr.startswith("Error: ") and "none.npz" in process.stderr


def test_help_explains_sources_and_options():
    result = run_cli("train", "--help")
    assert "--resume" in result.output and "built-in" in result.output and "digits" in result.output
    assert "train" in run_cli("--help").output


def test_each_training_default_is_declared_once_and_every_surface_agrees():
    """TrainConfig (via vae_tools.models.defaults) is the one source: the models, the estimators, the
    conv preset and `vaetools train --help` must all say the same."""
    import inspect

    import yaml

    from vae_tools.anomaly import VAEAnomalyDetector
    from vae_tools.config import TrainConfig, presets_dir
    from vae_tools.models import get_model_class
    from vae_tools.models.defaults import LATENT_DIM, LIKELIHOOD, PHOTO_LATENT_DIM
    from vae_tools.sklearn_api import VAEEmbedder

    training = TrainConfig()

    def defaults(callable_):
        return {name: p.default for name, p in inspect.signature(callable_).parameters.items()
                if p.default is not inspect.Parameter.empty}

    renamed = {"random_state": "seed"}
    surfaces = {"conv model": defaults(get_model_class("conv").__init__),
                "denoising model": defaults(get_model_class("denoising").__init__),
                "VAEEmbedder": defaults(VAEEmbedder.__init__), "VAEAnomalyDetector": defaults(VAEAnomalyDetector.__init__),
                "configs/conv.yaml": yaml.safe_load((presets_dir() / "conv.yaml").read_text())}
    compared = 0
    for surface, values in surfaces.items():
        for name, value in values.items():
            field = renamed.get(name, name)
            if surface.endswith("model") and field == "likelihood":
                assert value == LIKELIHOOD  # a model needs a concrete one; training decides "auto" from the data
                continue
            if (surface.endswith("model") or surface == "configs/conv.yaml") and field in ("latent_dim", "model"):
                # training leaves both to the data (model auto) and the model (its own code size)
                assert value == {"latent_dim": LATENT_DIM, "model": "conv"}[field], f"{surface}: {name} = {value!r}"
                continue
            if field in TrainConfig.__dataclass_fields__ and field != "image_shape":
                assert value == getattr(training, field), f"{surface}: {name} = {value!r}, TrainConfig: {getattr(training, field)!r}"
                compared += 1
    assert compared >= 30
    help_text = " ".join(run_cli("train", "--help").output.split())
    for option, field in (("--latent-dim", "latent_dim"), ("--lr", "lr"), ("--beta", "beta"), ("--seed", "seed"),
                          ("--batch-size", "batch_size"), ("--likelihood", "likelihood"), ("--noise", "noise")):
        shown = help_text.split(option + " ", 1)[1].split("[default: ", 1)[1].split("]", 1)[0]
        expected = {"latent_dim": f"{LATENT_DIM}; {PHOTO_LATENT_DIM} for the photo model",
                    # left to the device (vae_tools/device_settings.py): the help names the CPU's value first
                    "batch_size": f"{CPU_BATCH_SIZE} on a CPU; up to {GPU_BATCH_SIZE} a GPU",
                    "lr": f"{BASE_LR:g}; times sqrt(batch/{CPU_BATCH_SIZE}) for a GPU's default batch"}
        assert shown == expected.get(field, str(getattr(training, field))), option


def test_each_step_option_default_is_the_library_default():
    """A step's parameters take their defaults from the library's constants, so the command line, a
    pipeline file and the Python API agree: compared field by field with the estimator or function
    the step calls."""
    import dataclasses
    import inspect

    from vae_tools.anomaly.detector import VAEAnomalyDetector
    from vae_tools.denoising import denoise
    from vae_tools.embedding import embed
    from vae_tools.latent.clustering import LatentClusterer
    from vae_tools.latent.projection import umap_2d
    from vae_tools.latent.propagation import LabelPropagator
    from vaetools_pipelines.steps import get_step

    def defaults(callable_):
        return {name: p.default for name, p in inspect.signature(callable_).parameters.items()
                if p.default is not inspect.Parameter.empty}

    # step -> (the library callable, {step field: library parameter})
    pairs = {
        "label-propagate": (LabelPropagator, {"method": "method", "n_neighbors": "n_neighbors", "graph": "graph",
                                              "reduce": "reduce", "backend": "umap_backend", "n_maps": "n_maps",
                                              "seed": "random_state"}),
        "cluster": (LatentClusterer, {"method": "method", "n_clusters": "n_clusters", "reduce": "reduce",
                                      "backend": "umap_backend", "min_cluster_size": "min_cluster_size",
                                      "seed": "random_state"}),
        "anomalies": (VAEAnomalyDetector, {"score": "score", "samples": "samples", "batch_size": "scoring_batch_size",
                                           "contamination": "contamination", "percentile": "percentile",
                                           "threshold": "threshold"}),
        "embed": (embed, {"batch_size": "batch_size", "logvar": "logvar", "elbo": "elbo", "elbo_samples": "elbo_samples"}),
        "denoise": (denoise, {"batch_size": "batch_size", "add_noise": "add_noise", "seed": "seed"}),
        "umap": (umap_2d, {"n_neighbors": "n_neighbors", "min_dist": "min_dist", "seed": "seed", "backend": "backend"}),
    }
    compared = 0
    for step, (library, names) in pairs.items():
        fields = {f.name: f.default for f in dataclasses.fields(get_step(step).parameters)}
        for field, parameter in names.items():
            assert fields[field] == defaults(library)[parameter], f"{step} {field}: {fields[field]!r}"
            compared += 1
    assert compared == 30
    help_text = " ".join(run_cli("label-propagate", "--help").output.split())
    assert "--neighbors INTEGER RANGE Neighbours per sample in the graph. [default: 15;" in help_text


def test_the_library_names_parameters_and_the_command_line_shows_flags(tmp_path):
    """vae_tools/ speaks Python (`contamination`); the CLI maps each named parameter to its flag."""
    import re

    import vae_tools
    from vae_tools.anomaly.threshold import choose_threshold
    from vae_tools.errors import DataError

    root = Path(vae_tools.__file__).parent
    spelled = [f"{path.relative_to(root)}: {m.group(0)}" for path in root.rglob("*.py")
               for m in re.finditer(r"(?<![\w-])--[a-z][\w-]*", path.read_text())]
    assert spelled == []
    with pytest.raises(DataError, match=r"^`contamination` must lie in \(0, 0.5\), got 0.7$"):
        choose_threshold(np.zeros(10), contamination=0.7)
    np.savez(tmp_path / "x.npz", x=np.random.default_rng(0).random((20, 8, 8)).astype(np.float32))
    result = run_cli("train", "--data", tmp_path / "x.npz", "--split", "train", "--out", tmp_path / "r")
    assert result.exit_code == 1 and "has no train/test split" in result.output and "use --split=all" in result.output


def test_warnings_reach_the_user_as_one_line_each_without_the_library_source(capsys):
    import warnings

    from vaetools_pipelines.cli import one_line_warnings

    with one_line_warnings():
        warnings.simplefilter("always")
        for _ in range(3):  # the same warning from every fold of a cross-validation
            warnings.warn("label spreading stopped at max_iter=200 before converging", UserWarning)
        warnings.warn("a second matter", RuntimeWarning)
    err = capsys.readouterr().err
    assert err.splitlines() == ["Warning: label spreading stopped at max_iter=200 before converging",
                                "Warning: a second matter"]
    assert ".py" not in err
