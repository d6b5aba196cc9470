"""Misuse that must never destroy or corrupt a user's data: each case gives one `Error:` line, a
non-zero exit, and leaves every input as it was."""

import hashlib
import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import invoke, make_images, tiny_training
from vaetools_pipelines.runner import apply_overrides, load_pipeline
from vae_tools.atomic import write_json
from vae_tools.errors import ConfigError

FAST = tiny_training(2)


def digest(path):
    if path.is_dir():
        return {p.relative_to(path).as_posix(): digest(p) for p in sorted(path.rglob("*")) if p.is_file()}
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("hard")
    images, labels = make_images(n=40, size=12)
    np.savez(root / "bars.npz", x=images, y=labels)
    invoke("train", "--data", root / "bars.npz", "--out", root / "run", *FAST)
    return root


def refused(*args):
    result = invoke(*args, ok=False)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:") and "Traceback" not in result.output
    return lines[0]


def test_embed_output_equal_to_its_data_is_refused_and_the_data_kept(run, tmp_path):
    data = tmp_path / "x.npz"
    data.write_bytes((run / "bars.npz").read_bytes())
    before = digest(data)
    message = refused("embed", "--model", run / "run", "--data", data, "--out", data)
    assert "would overwrite --data" in message
    assert digest(data) == before


def test_output_reached_through_a_link_is_refused(run, tmp_path):
    data = tmp_path / "x.npz"
    data.write_bytes((run / "bars.npz").read_bytes())
    (tmp_path / "alias.npz").symlink_to(data)
    refused("embed", "--model", run / "run", "--data", data, "--out", tmp_path / "alias.npz")
    assert data.is_file() and not data.is_symlink()


def test_denoise_into_the_folder_holding_its_images_is_refused(run, tmp_path):
    project = tmp_path / "proj"
    (project / "images").mkdir(parents=True)
    images, _ = make_images(n=6, size=12)
    for i, image in enumerate(images):
        Image.fromarray(image).save(project / "images" / f"{i}.png")
    before = digest(project)
    refused("denoise", "--model", run / "run", "--data", project / "images", "--out", project)
    refused("denoise", "--model", run / "run", "--data", project / "images", "--out", project / "images" / "clean")
    assert digest(project) == before


def test_denoise_into_the_folder_of_its_npy_is_refused(run, tmp_path):
    work = tmp_path / "w"
    work.mkdir()
    np.save(work / "denoised.npy", make_images(n=6, size=12)[0])
    before = digest(work)
    refused("denoise", "--model", run / "run", "--data", work / "denoised.npy", "--out", work)
    assert digest(work) == before


def test_empty_out_is_refused(run):
    refused("embed", "--model", run / "run", "--data", run / "bars.npz", "--out", "")


@pytest.mark.parametrize("name", ["../../somewhere", "a/b", "..", "bad\nname"])
def test_pipeline_names_cannot_leave_runs(tmp_path, name):
    spec = tmp_path / "p.yaml"
    spec.write_text(json.dumps({"name": name, "data": "digits", "steps": ["train"]}))
    with pytest.raises(ConfigError, match="one folder name"):
        load_pipeline(spec)
    plain = tmp_path / "plain.yaml"
    plain.write_text("data: digits\nsteps:\n  - train\n")
    with pytest.raises(ConfigError, match="one folder name"):
        load_pipeline(plain, overrides=["name=../x"])


def test_set_reaches_a_step_written_without_options_and_bad_yaml_is_one_error(tmp_path):
    raw = apply_overrides({"data": "digits", "steps": ["train", "embed"]}, ["train.epochs=3"], "p.yaml")
    assert raw["steps"][0] == {"train": {"epochs": 3}}
    with pytest.raises(ConfigError, match="not valid YAML"):
        apply_overrides({"data": "digits", "steps": ["train"]}, ["train.epochs=[1"], "p.yaml")
    spec = tmp_path / "list.yaml"
    spec.write_text("data: [1, 2]\nsteps:\n  - train\n")
    with pytest.raises(ConfigError, match="one source"):
        load_pipeline(spec)


def test_json_files_never_hold_nan_or_infinity(tmp_path):
    write_json(tmp_path / "m.json", {"a": float("nan"), "b": [float("inf"), 1.5], "c": np.float32("-inf")})

    def strict(value):
        raise AssertionError(f"non-standard JSON constant {value}")

    assert json.loads((tmp_path / "m.json").read_text(), parse_constant=strict) == {"a": None, "b": [None, 1.5],
                                                                                   "c": None}


def test_infinite_beta_is_refused_before_a_run_folder_exists(run, tmp_path):
    result = invoke("train", "--data", run / "bars.npz", "--out", tmp_path / "r", "--beta", "inf", *FAST, ok=False)
    assert result.exit_code != 0 and "beta must be a finite number" in result.output
    assert not (tmp_path / "r" / "config.json").exists()


def test_sixteen_bit_pngs_share_one_scale(tmp_path):
    from vae_tools.data import load_dataset

    folder = tmp_path / "deep"
    folder.mkdir()
    dim = np.full((8, 8), 1000, dtype=np.uint16)
    bright = dim.copy()
    bright[0, 0] = 60000
    Image.fromarray(dim).save(folder / "a.png")
    Image.fromarray(bright).save(folder / "b.png")
    x = load_dataset(str(folder)).batch(np.arange(2)).numpy()
    assert x[0, 0, 4, 4] == pytest.approx(x[1, 0, 4, 4])  # the same value reads the same in both files
    assert x[0, 0, 4, 4] == pytest.approx(1000 / 65535, abs=1 / 255)


def test_ctrl_c_exits_130_and_the_advice_names_the_data(run, tmp_path, monkeypatch):
    import vae_tools.training
    from vae_tools.training.trainer import TrainingInterrupted

    def interrupted(*args, **kwargs):
        raise TrainingInterrupted("training interrupted after epoch 1")

    monkeypatch.setattr(vae_tools.training, "train", interrupted)
    result = invoke("train", "--data", run / "bars.npz", "--out", tmp_path / "r", "--quiet", ok=False)
    assert result.exit_code == 130  # no epoch was kept: the line is the command as typed, without --resume
    assert result.output.rstrip().endswith(f"continue with: vaetools train --data {run / 'bars.npz'} --out "
                                           f"{tmp_path / 'r'} --quiet")


def test_a_decompression_bomb_is_one_clear_error(tmp_path, monkeypatch):
    from vae_tools.data import load_dataset
    from vae_tools.errors import DataError

    folder = tmp_path / "bomb"
    folder.mkdir()
    Image.new("L", (300, 300)).save(folder / "big.png")
    monkeypatch.setenv("VAETOOLS_MAX_IMAGE_PIXELS", "10000")
    with pytest.raises(DataError, match="big.png: .*decompression bomb.*VAETOOLS_MAX_IMAGE_PIXELS"):
        load_dataset(str(folder))
    result = invoke("train", "--data", folder, "--out", tmp_path / "r", "--quiet", ok=False)
    assert result.exit_code == 1 and "VAETOOLS_MAX_IMAGE_PIXELS" in result.output and "Traceback" not in result.output
    monkeypatch.setenv("VAETOOLS_MAX_IMAGE_PIXELS", "100000")
    assert load_dataset(str(folder)).shape == (1, 300, 300)


def test_a_gz_idx_whose_header_lies_is_refused_without_allocating(tmp_path):
    import gzip
    import struct

    from vae_tools.data import load_dataset
    from vae_tools.errors import DataError

    path = tmp_path / "train-images-idx3-ubyte.gz"
    with gzip.open(path, "wb") as handle:  # claims 10^9 images of 28x28, holds 100 bytes
        handle.write(bytes([0, 0, 8, 3]) + struct.pack(">III", 10**9, 28, 28) + bytes(100))
    with pytest.raises(DataError, match="truncated"):
        load_dataset(str(path))
    empty = tmp_path / "empty-images-idx3-ubyte"
    empty.write_bytes(bytes([0, 0, 8, 3]) + struct.pack(">III", 5, 0, 0))
    with pytest.raises(DataError, match="empty array"):
        load_dataset(str(empty))


@pytest.mark.skipif(__import__("os").geteuid() == 0, reason="root ignores file permissions")
def test_a_read_only_output_folder_is_one_line(run, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        result = invoke("embed", "--model", run / "run", "--data", run / "bars.npz", "--out", locked / "e.parquet",
                        "--quiet", ok=False)
    finally:
        locked.chmod(0o700)
    assert result.exit_code == 1 and "permission denied" in result.output and "Traceback" not in result.output


def test_an_os_error_becomes_one_line_naming_the_path(run, tmp_path, monkeypatch):
    import errno
    import os

    import vae_tools.embedding

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "e.parquet"))

    monkeypatch.setattr(vae_tools.embedding, "embed", disk_full)
    result = invoke("embed", "--model", run / "run", "--data", run / "bars.npz", "--out", tmp_path / "e.parquet",
                    ok=False)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 1 and lines == [f"Error: {tmp_path / 'e.parquet'}: the disk is full; "
                                               "no file was left half-written"]


def test_a_second_writer_of_a_run_folder_is_refused_and_a_stale_lock_taken_over(tmp_path):
    import os
    import socket
    import subprocess
    import sys

    from vaetools_pipelines.cli import step_commands
    from vaetools_pipelines.run_lock import LOCK_FILE, run_folder_lock
    from vae_tools.errors import VaeToolsError

    spec = tmp_path / "p.yaml"
    spec.write_text("data: digits\nsteps:\n  - train\n")
    run = tmp_path / "runs" / "p"
    run.mkdir(parents=True)
    from vaetools_pipelines.runner import run_pipeline

    with run_folder_lock(run):  # another writer holds the folder
        with pytest.raises(VaeToolsError, match=f"in use by process {os.getpid()}"):
            run_pipeline(load_pipeline(spec, out=str(run)), step_commands(), quiet=True)
    assert not (run / LOCK_FILE).exists()

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    (run / LOCK_FILE).write_text(json.dumps({"pid": gone.pid, "host": socket.gethostname(), "since": "then"}))
    with run_folder_lock(run) as lock:
        assert json.loads(lock.read_text())["pid"] == os.getpid()


@pytest.mark.parametrize("params, field", [
    ({"latent_dim": 10**12}, "latent_dim"), ({"latent_dim": float("nan")}, None), ({"hidden_dim": "wide"}, "hidden_dim"),
    ({"image_shape": [1, 100000, 8]}, "image_shape"), ({"widths": [8] * 50}, "widths"),
])
def test_a_hand_edited_config_json_is_one_line_naming_the_field(run, tmp_path, params, field):
    import shutil

    from vae_tools.errors import RunFolderError
    from vae_tools.run_folder import load_run

    copy = tmp_path / "run"
    shutil.copytree(run / "run", copy)
    config = json.loads((copy / "config.json").read_text())
    config["model"]["params"].update(params)
    (copy / "config.json").write_text(json.dumps(config))  # json writes NaN as the non-standard NaN
    with pytest.raises(RunFolderError, match=field or "not a number JSON allows"):
        load_run(copy)
    result = invoke("embed", "--model", copy, "--data", run / "bars.npz", "--out", tmp_path / "e.csv", ok=False)
    assert result.exit_code == 1 and result.output.startswith("Error:") and "Traceback" not in result.output


def test_config_json_that_is_a_device_or_huge_is_refused_without_reading_it_all(run, tmp_path):
    import shutil

    from vae_tools.errors import RunFolderError
    from vae_tools.run_folder import load_run

    copy = tmp_path / "run"
    shutil.copytree(run / "run", copy)
    (copy / "config.json").unlink()
    (copy / "config.json").symlink_to("/dev/zero")
    with pytest.raises(RunFolderError, match="not a regular file"):
        load_run(copy)
    (copy / "config.json").unlink()
    (copy / "config.json").write_text(" " * (2 << 20))
    with pytest.raises(RunFolderError, match="larger than"):
        load_run(copy)


def test_resume_checks_the_training_state_and_the_image_size_before_any_epoch(run, tmp_path):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run / "run", copy)
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    committed = copy / "training_state.safetensors"  # the file that holds the epoch (the .json is its copy)
    with safe_open(str(committed), framework="pt") as handle:
        metadata = handle.metadata()
    state = json.loads(metadata["progress"])
    state["epoch"] = "two"
    save_file(load_file(str(committed)), str(committed), metadata={**metadata, "progress": json.dumps(state)})
    result = invoke("train", "--data", run / "bars.npz", "--out", copy, "--resume", "--epochs", "3", "--quiet", ok=False)
    assert result.exit_code == 1 and "field 'epoch'" in result.output
    images, labels = make_images(n=40, size=16)
    np.savez(tmp_path / "bigger.npz", x=images, y=labels)
    result = invoke("train", "--data", tmp_path / "bigger.npz", "--out", run / "run", "--resume", "--epochs", "3",
                    "--quiet", ok=False)
    assert result.exit_code == 1 and "trained on images of 12x12" in result.output and "16x16" in result.output


def one_error_line(result):
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code != 0 and lines[-1].startswith("Error:") and "Traceback" not in result.output, result.output
    return lines[-1]


def test_embeddings_with_duplicate_ids_or_text_latents_are_refused(tmp_path):
    import pandas as pd

    pd.DataFrame({"id": ["a", "a", "b"], "mu_0": [1.0, 2, 3], "mu_1": [1.0, 2, 3]}).to_csv(tmp_path / "d.csv", index=False)
    pd.DataFrame({"id": ["a", "b", "c"], "mu_0": ["x", "y", "z"], "mu_1": [1.0, 2, 3]}).to_csv(tmp_path / "t.csv",
                                                                                            index=False)
    assert "appears more than once" in one_error_line(
        invoke("cluster", "--embeddings", tmp_path / "d.csv", "--out", tmp_path / "o1", ok=False))
    assert "holds text" in one_error_line(
        invoke("cluster", "--embeddings", tmp_path / "t.csv", "--out", tmp_path / "o2", ok=False))


def test_small_cases_each_get_one_clear_line(run, tmp_path):
    (tmp_path / "header.csv").write_text("label,p0,p1,p2,p3\n")
    assert "no rows" in one_error_line(invoke("embed", "--model", run / "run", "--data", tmp_path / "header.csv",
                                              "--out", tmp_path / "e.csv", ok=False))
    assert "--add-noise is empty" in one_error_line(invoke("denoise", "--model", run / "run", "--data",
                                                           run / "bars.npz", "--out", tmp_path / "dn",
                                                           "--add-noise", "", ok=False))
    assert "'bogus' is not a step" in one_error_line(invoke("chain", "--data", run / "bars.npz", "--out",
                                                            tmp_path / "ch", "train", "bogus", ok=False))
    assert not (tmp_path / "ch" / "pipeline_state.json").exists()
    assert "finite" in one_error_line(invoke("anomalies", "--model", run / "run", "--data", run / "bars.npz",
                                             "--out", tmp_path / "an", "--threshold", "nan", ok=False))
    assert "at most 4096" in one_error_line(invoke("train", "--data", run / "bars.npz", "--out", tmp_path / "big",
                                                   "--image-size", "100000", ok=False))
    images, _ = make_images(n=1, size=12)
    np.savez(tmp_path / "one.npz", x=images)
    # One image is scored against the run's normal reference images; one reference image is too few.
    invoke("anomalies", "--model", run / "run", "--data", tmp_path / "one.npz", "--out", tmp_path / "an1", "--quiet")
    assert len(pd.read_csv(tmp_path / "an1" / "anomalies.csv")) == 1
    assert "at least 2" in one_error_line(invoke("anomalies", "--model", run / "run", "--data", tmp_path / "one.npz",
                                                 "--reference", tmp_path / "one.npz", "--out", tmp_path / "an2",
                                                 ok=False))
    assert not (tmp_path / "an2").exists()


def test_hdbscan_cluster_size_above_the_sample_count_is_refused(tmp_path):
    import pandas as pd

    frame = pd.DataFrame({"id": [str(i) for i in range(30)], "mu_0": np.arange(30.0), "mu_1": np.arange(30.0)})
    frame.to_csv(tmp_path / "e.csv", index=False)
    assert "min_cluster_size" in one_error_line(invoke("cluster", "--embeddings", tmp_path / "e.csv", "--method",
                                                       "hdbscan", "--min-cluster-size", "500", "--out",
                                                       tmp_path / "c", ok=False))


def test_a_labels_file_with_missing_labels_keeps_the_rest_as_written(run, tmp_path):
    import pandas as pd

    ids = [str(i) for i in range(40)]
    _, labels = make_images(n=40, size=12)
    given = [str(labels[i]) if i < 20 else "" for i in range(40)]
    pd.DataFrame({"id": ids, "label": given}).to_csv(tmp_path / "labels.csv", index=False)
    out = tmp_path / "lp"
    invoke("label-propagate", "--model", run / "run", "--data", run / "bars.npz", "--labels", tmp_path / "labels.csv",
           "--neighbors", "5", "--refine-rounds", "0", "--out", out)
    predictions = pd.read_csv(out / "predictions.csv", dtype=str)
    assert set(predictions["predicted_label"]) <= {"0", "1"}  # never "1.0"
    assert predictions["labelled"].eq("True").sum() == 20
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["accuracy_unlabelled"] > 0.5  # compared with the data's own labels, not 0% from "1" vs 1


def test_data_of_another_size_is_named_once_and_denoised_back_at_its_own_size(run, tmp_path):
    images, labels = make_images(n=6, size=16)
    folder = tmp_path / "big"
    folder.mkdir()
    for i, image in enumerate(images):
        Image.fromarray(image).save(folder / f"{i}.png")
    np.savez(tmp_path / "big.npz", x=images)
    from click.testing import CliRunner

    from vaetools_pipelines.cli import main

    result = CliRunner().invoke(main, ["denoise", "--model", str(run / "run"), "--data", str(folder),
                                                       "--out", str(tmp_path / "dn"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert result.stderr.count("Warning:") == 1 and "16x16" in result.stderr and "12x12" in result.stderr
    assert Image.open(tmp_path / "dn" / "images" / "0.png").size == (16, 16)
    invoke("denoise", "--model", run / "run", "--data", tmp_path / "big.npz", "--out", tmp_path / "dn2", "--quiet")
    with np.load(tmp_path / "dn2" / "denoised.npz") as written:
        assert written["x"].shape == (6, 16, 16)


def test_a_step_that_fails_part_way_leaves_its_previous_outputs_whole(run, tmp_path, monkeypatch):
    import vaetools_pipelines.anomaly_report

    out = tmp_path / "an"
    invoke("anomalies", "--model", run / "run", "--data", run / "bars.npz", "--out", out, "--samples", "2", "--quiet")
    (out / "mine.txt").write_text("a file of the user's")
    before = digest(out)

    def broken_report(*args, **kwargs):
        raise OSError(28, "No space left on device", str(out / "report.html"))

    monkeypatch.setattr(vaetools_pipelines.anomaly_report, "write_report", broken_report)
    result = invoke("anomalies", "--model", run / "run", "--data", run / "bars.npz", "--out", out, "--samples", "3",
                    "--quiet", ok=False)
    assert result.exit_code == 1 and "the disk is full" in result.output
    assert digest(out) == before  # csv, parquet and metrics of the failed run never reached --out
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".part")]


def test_a_failed_checkpoint_write_leaves_weights_state_and_history_in_step(run, tmp_path, monkeypatch):
    import errno
    import shutil

    import vae_tools.run_folder

    copy = tmp_path / "run"
    shutil.copytree(run / "run", copy)
    files = ["model.safetensors", "training_state.json", "training_state.safetensors", "history.csv"]
    before = {name: digest(copy / name) for name in files}

    def disk_full(obj):
        raise OSError(errno.ENOSPC, "No space left on device", str(copy / "training_state.json"))

    monkeypatch.setattr(vae_tools.run_folder, "finite_json", disk_full)  # fails after the weights were written
    result = invoke("train", "--data", run / "bars.npz", "--out", copy, "--resume", "--epochs", "4", "--quiet", ok=False)
    assert result.exit_code == 1 and "the disk is full" in result.output
    assert {name: digest(copy / name) for name in files} == before
    assert not [p for p in copy.iterdir() if ".part" in p.name]
    monkeypatch.undo()
    invoke("train", "--data", run / "bars.npz", "--out", copy, "--resume", "--epochs", "3", "--quiet")
    state = json.loads((copy / "training_state.json").read_text())
    assert state["epoch"] == 3 and len(state["history"]) == 3
    assert len((copy / "history.csv").read_text().strip().splitlines()) == 4


def test_the_automatic_training_length_is_recorded_and_printed(tmp_path):
    images, labels = make_images(n=40, size=12)
    np.savez(tmp_path / "bars.npz", x=images, y=labels)
    result = invoke("train", "--data", tmp_path / "bars.npz", "--out", tmp_path / "r", "--batch-size", "16",
                    "--latent-dim", "4", "--set", "hidden_dim=32", "--set", "widths=[8, 16]", "--set", "min_steps=60",
                    "--quiet")
    length = json.loads((tmp_path / "r" / "config.json").read_text())["choices"]["training_length"]
    # 36 training images in batches of 16: 2 steps an epoch, so 60 steps need 30 epochs (the minimum).
    assert length["epochs"] == 30 and length["patience"] == 8 and "at least 30 epochs" in length["why"]
    assert f"training length: {length['why']}" in result.output
    from vae_tools.config import TrainConfig
    from vae_tools.training.trainer import training_length

    stretched = training_length(TrainConfig(), steps_per_epoch=12)  # 1,617 digits in batches of 128
    assert stretched["epochs"] == 250 and stretched["patience"] == 67
    assert training_length(TrainConfig(epochs=5), steps_per_epoch=12)["epochs"] == 5


def test_a_pipeline_run_folder_is_accepted_as_a_model_and_a_wrong_folder_points_to_one(run, tmp_path):
    import shutil

    from vae_tools.errors import RunFolderError
    from vae_tools.run_folder import load_run
    from vae_tools.sklearn_api import load_model

    pipeline_run = tmp_path / "runs" / "demo"
    shutil.copytree(run / "run", pipeline_run / "model")
    model, _ = load_run(pipeline_run)
    assert load_model(pipeline_run).module_.latent_dim == model.latent_dim
    invoke("embed", "--model", pipeline_run, "--data", run / "bars.npz", "--out", tmp_path / "e.csv", "--quiet")
    with pytest.raises(RunFolderError, match=f"a model was found in {pipeline_run / 'model'}"):
        load_run(tmp_path / "runs")


def test_a_step_placed_before_its_input_is_refused_before_anything_is_written(tmp_path):
    from vaetools_pipelines.cli import step_commands
    from vaetools_pipelines.runner import run_pipeline

    spec = tmp_path / "p.yaml"
    spec.write_text("data: digits\nsteps:\n  - embed\n  - train\n")
    with pytest.raises(ConfigError, match="comes after it"):
        run_pipeline(load_pipeline(spec, out=str(tmp_path / "r")), step_commands(), quiet=True)
    assert not (tmp_path / "r").exists()


def test_unwritable_or_impossible_outputs_are_refused_up_front(run, tmp_path):
    long_name = tmp_path / ("x" * 300)
    assert "longer than 255 bytes" in refused("embed", "--model", run / "run", "--data", run / "bars.npz",
                                              "--out", long_name / "e.csv")
    (tmp_path / "afile").write_text("")
    assert "is a file, not a folder" in refused("embed", "--model", run / "run", "--data", run / "bars.npz",
                                                "--out", tmp_path / "afile" / "e.csv")
    folder = tmp_path / "a_folder.csv"
    folder.mkdir()
    result = invoke("embed", "--model", run / "run", "--data", run / "bars.npz", "--out", folder, ok=False)
    assert result.exit_code == 1 and "is a folder, expected a file name" in result.output
