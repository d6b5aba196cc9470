"""The README's guarantees as properties: what a command may touch, how it stops, how it reads a
source and how it takes its values, over generated cases as well as the ones users reported."""

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from vae_tools.written import RECORD_FILE
from conftest import invoke, make_images, one_error_line, snapshot, tiny_training

FAST = tiny_training(1)
ROOT = Path(__file__).resolve().parents[1]


# --- the runner checks everything before it touches anything --------------------------------------

def test_a_users_own_model_folder_is_never_replaced_by_a_pipeline(world, tmp_path):
    project = tmp_path / "proj"
    (project / "model").mkdir(parents=True)
    (project / "model" / "notes.txt").write_text("mine")
    before = snapshot(project)
    message = one_error_line(invoke("chain", "--data", world / "bars.npz", "--out", project, "train", *FAST, ok=False))
    assert "was not written by this pipeline" in message
    assert snapshot(project) == before


def test_a_typo_in_the_data_costs_the_trained_model_nothing(world, tmp_path):
    run = tmp_path / "p"
    invoke("chain", "--data", world / "bars.npz", "--out", run, "train", *FAST)
    before = snapshot(run / "model")
    message = one_error_line(invoke("chain", "--data", world / "barz.npz", "--out", run, "train", *FAST, ok=False))
    assert "barz.npz: no such file" in message
    assert snapshot(run / "model") == before


def test_a_run_folder_inside_the_image_folder_is_refused_before_anything_is_written(world, tmp_path):
    data = tmp_path / "data"
    (data / "model").mkdir(parents=True)  # a class of images that happens to be called "model"
    Image.fromarray(make_images(n=1, size=12)[0][0]).save(data / "model" / "a.png")
    Image.fromarray(make_images(n=1, size=12)[0][0]).save(data / "other.png")
    (tmp_path / "p.yaml").write_text(f"data: {data}\nsteps:\n  - train: {{epochs: 1}}\n")
    before = snapshot(data)
    message = one_error_line(invoke("run", tmp_path / "p.yaml", "--out", data, ok=False), code=2)
    assert "lies inside the image folder" in message
    assert snapshot(data) == before and not (data / "pipeline_state.json").exists()


@pytest.mark.parametrize("body, overrides, message", [
    ("  - train: {{epochs: 1.9}}\n", (), "takes a whole number, got float 1.9"),
    ("  - train: {{epochs: true}}\n", (), "takes a whole number, got bool True"),
    ("  - train: {{epochs: {{a: 1}}}}\n", (), "takes one value"),
    ("  - train\n", ("steps=5",), "the steps are the pipeline file's"),
    ("  - train\n", ("steps={train: {epochs: 1}}",), "the steps are the pipeline file's"),
    ("  - train\n", ("steps=[]",), "the steps are the pipeline file's"),
    ("  - train: {{epochs: 1, epochs: 3}}\n", (), "written twice"),
    ("  - train\n", ("name=[1]",), "'name' must be text"),
    ("  - train: {{quiet: 1}}\n", (), "takes true or false"),
])
def test_pipeline_values_are_as_strict_as_typed_ones(world, tmp_path, body, overrides, message):
    (tmp_path / "p.yaml").write_text(f"data: {world / 'bars.npz'}\nsteps:\n" + body.format())
    sets = [arg for text in overrides for arg in ("--set", text)]
    line = one_error_line(invoke("run", tmp_path / "p.yaml", "--out", tmp_path / "run", *sets, ok=False))
    assert message in line
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("option", [["--out", "elsewhere"], ["--data", "digits"]])
def test_a_run_folder_option_typed_after_a_step_is_refused(world, tmp_path, monkeypatch, option):
    monkeypatch.chdir(tmp_path)
    line = one_error_line(invoke("chain", "--data", world / "bars.npz", "--out", tmp_path / "run", "train", *FAST,
                                 "embed", *option, ok=False))
    assert "give --out and --data before the steps" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_training_config_out_of_bounds_is_one_line(world, tmp_path):
    (tmp_path / "huge.yaml").write_text("latent_dim: 100000000\n")
    line = one_error_line(invoke("train", "--data", world / "bars.npz", "--out", tmp_path / "r",
                                 "--config", tmp_path / "huge.yaml", "--quiet", ok=False))
    assert "latent_dim must be from 1 to 4096" in line and not (tmp_path / "r").exists()


# --- one writer per output; run folders keep their own files -------------------------------------

def test_a_second_train_into_the_same_folder_is_refused_while_the_first_runs(world, tmp_path):
    from vaetools_pipelines.run_lock import output_lock

    with output_lock(tmp_path / "r"):  # the first writer
        line = one_error_line(invoke("train", "--data", world / "bars.npz", "--out", tmp_path / "r", *FAST, ok=False))
    assert f"in use by process {os.getpid()}" in line
    assert not (tmp_path / "r").exists()
    assert [p.name for p in tmp_path.iterdir()] == []  # and the lock went with the holder


@pytest.mark.parametrize("command", [
    lambda w: ["embed", "--model", w / "run", "--data", w / "bars.npz", "--out", w / "run" / "history.csv", "--quiet"],
    lambda w: ["cluster", "--embeddings", w / "latents.parquet", "--out", w / "run"],
    lambda w: ["sample", "--model", w / "run", "--out", w / "run"],
    lambda w: ["train", "--data", w / "bars.npz", "--out", w / "run", "--quiet"],
])
def test_an_output_on_a_run_folder_or_its_own_files_is_refused(world, command):
    before = snapshot(world / "run")
    line = one_error_line(invoke(*command(world), ok=False), code=2)
    assert "run folder" in line or "would overwrite --model" in line
    assert snapshot(world / "run") == before


def test_resuming_on_other_data_of_the_same_shape_is_refused_unless_allowed(world, tmp_path):
    images, labels = make_images(n=30, size=12, seed=5)
    np.savez(tmp_path / "other.npz", x=images, y=labels)
    run = tmp_path / "r"
    invoke("train", "--data", world / "bars.npz", "--out", run, *FAST)
    record = json.loads((run / "config.json").read_text())["data"]
    line = one_error_line(invoke("train", "--data", tmp_path / "other.npz", "--out", run, "--resume", "--epochs", "2",
                                 "--quiet", ok=False))
    assert "was trained on" in line
    assert json.loads((run / "config.json").read_text())["data"] == record
    invoke("train", "--data", tmp_path / "other.npz", "--out", run, "--resume", "--epochs", "2", "--quiet",
           "--allow-other-data")


# --- values that would write black or NaN images --------------------------------------------------

@pytest.mark.parametrize("command", [
    ["traverse", "--range", "nan"], ["sample", "--temperature", "inf"], ["sample", "--temperature", "1e308"],
])
def test_non_finite_or_absurd_numbers_are_refused(world, tmp_path, command):
    one_error_line(invoke(*command, "--model", world / "run", "--out", tmp_path / "o", ok=False), code=2)
    assert not (tmp_path / "o").exists()


def test_attribute_strength_is_bounded(world, tmp_path):
    one_error_line(invoke("attribute", "--model", world / "run", "--data", world / "bars.npz", "--out", tmp_path / "o",
                          "--from", "0", "--to", "1", "--strength", "1e308", ok=False), code=2)


@pytest.mark.parametrize("option", [["--contamination", "0"], ["--contamination", "1"], ["--percentile", "100"]])
def test_impossible_thresholds_are_refused_before_scoring(world, tmp_path, option):
    one_error_line(invoke("anomalies", "--model", world / "run", "--data", world / "bars.npz", "--out",
                          tmp_path / "o", *option, ok=False), code=2)
    assert not (tmp_path / "o").exists()


def test_a_smaller_second_sample_leaves_no_stale_images(world, tmp_path):
    invoke("sample", "--model", world / "run", "--out", tmp_path / "s", "--n", "6")
    invoke("sample", "--model", world / "run", "--out", tmp_path / "s", "--n", "2")
    assert sorted(p.name for p in (tmp_path / "s" / "images").iterdir()) == ["sample_00000.png", "sample_00001.png"]


# --- labels read as written ------------------------------------------------------------------------

def test_labels_are_read_as_written(world, tmp_path):
    from vaetools_pipelines.label_propagate_step import read_label_file

    ids = np.array(["a", "b", "c", "d", "e"], dtype=object)
    (tmp_path / "l.csv").write_text("id,label\na,7.0\nb,7\nc,NA\nd,None\ne,\n")
    assert list(read_label_file(tmp_path / "l.csv", ids)) == ["7", "7", "NA", "None", None]


def test_a_labels_file_naming_one_class_is_refused(world, tmp_path):
    (tmp_path / "l.csv").write_text("id,label\n0,1\n1,1\n")
    line = one_error_line(invoke("label-propagate", "--embeddings", world / "latents.parquet", "--labels",
                                 tmp_path / "l.csv", "--out", tmp_path / "o", ok=False))
    assert "at least two classes" in line and not (tmp_path / "o").exists()


def test_labels_written_as_floats_match_integer_labels(world, tmp_path):
    lines = ["id,label"] + [f"{i},{i % 2}.0" for i in range(0, 10)] + [f"{i},{i % 2}" for i in range(10, 20)]
    (tmp_path / "l.csv").write_text("\n".join(lines) + "\n")
    invoke("label-propagate", "--embeddings", world / "latents.parquet", "--labels", tmp_path / "l.csv",
           "--out", tmp_path / "o", "--maps", "1", "--quiet")
    metrics = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert sorted(metrics["classes"]) == ["0", "1"]
    import pandas as pd

    predictions = pd.read_csv(tmp_path / "o" / "predictions.csv", dtype=str)
    labelled = predictions[predictions["labelled"] == "True"]
    assert len(labelled) == 20 and (labelled["predicted_label"] == labelled["true_label"]).all()  # "1.0" is the 1


# --- partitioned tables --------------------------------------------------------------------------

def test_a_partitioned_table_with_a_missing_part_or_stray_files_reads_right_or_not_at_all(tmp_path):
    import pandas as pd

    from vae_tools.errors import VaeToolsError
    from vae_tools.tables import finish_parts, read_table, start_parts, write_part

    folder = tmp_path / "t.parquet"
    start_parts(folder, 3, "test")
    for part in range(3):
        write_part(pd.DataFrame({"id": [f"{part}-{k}" for k in range(4)], "mu_0": np.arange(4.0)}), folder, part)
    finish_parts(folder, 3, 12, "test")
    (folder / "notes.parquet").write_bytes(b"not a table")
    assert len(read_table(folder)) == 12
    (folder / "part-00001.parquet").unlink()
    with pytest.raises(VaeToolsError, match="holds 8 rows where _SUCCESS counts 12"):
        read_table(folder)


# --- the Python API as scikit-learn users expect ---------------------------------------------------

def test_a_detector_around_a_trained_vae_survives_clone_and_cross_validation(world):
    from sklearn.base import clone
    from sklearn.exceptions import NotFittedError

    from vae_tools import load_model
    from vae_tools.anomaly import VAEAnomalyDetector

    emb = load_model(world / "run")
    images = np.load(world / "bars.npz")["x"]
    detector = clone(VAEAnomalyDetector(vae=emb, samples=2, contamination=0.1))
    assert detector.vae is emb
    assert detector.fit(images).predict(images).shape == (40,)
    with pytest.raises(NotFittedError):
        VAEAnomalyDetector(vae=emb).predict(images)


def test_every_estimator_says_not_fitted_before_fit():
    from sklearn.exceptions import NotFittedError

    from vae_tools import LabelPropagator, VAEEmbedder
    from vae_tools.anomaly import VAEAnomalyDetector

    x = np.random.default_rng(0).random((10, 4))
    for call in (LabelPropagator().predict, LabelPropagator().predict_proba, VAEEmbedder().transform,
                 VAEEmbedder().score_samples, VAEAnomalyDetector().predict, VAEAnomalyDetector().decision_function):
        with pytest.raises(NotFittedError):
            call(x)


def test_a_full_disk_while_saving_weights_is_one_line_naming_the_file(world, tmp_path, monkeypatch):
    from safetensors import SafetensorError

    import vae_tools.run_folder

    def full(*args, **kwargs):
        raise SafetensorError("Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "
                              "\"No space left on device\" })")

    monkeypatch.setattr(vae_tools.run_folder, "save_file", full)
    line = one_error_line(invoke("train", "--data", world / "bars.npz", "--out", tmp_path / "r", *FAST, ok=False))
    assert "model.safetensors" in line and "the disk is full" in line


# --- sources: pixels come back within 1/255 of the truth, or the source is refused ----------------

FORMATS = ("npy", "npz", "png-folder", "tiff-folder", "csv")
DTYPES = ("uint8", "uint16", "float32", "float64", "bool", "int64", "int32")


def write_source(tmp: Path, fmt: str, pixels: np.ndarray, dtype: str, layout: str):
    """Writes ``pixels`` (N, H, W) in [0, 1] as ``fmt`` with ``dtype``; returns the path and the truth,
    or None where the format cannot hold that type."""
    top = {"uint8": 255, "uint16": 65535, "int64": 255, "int32": 255, "bool": 1}.get(dtype, 1)
    stored = (np.round(pixels * top)).astype(dtype) if dtype != "bool" else pixels > 0.5
    truth = stored.astype(np.float64) / top
    if fmt in ("npy", "npz"):
        array = {"NHW": stored, "NHWC": stored[..., None], "NCHW": stored[:, None]}[layout]
        path = tmp / f"x.{fmt}"
        np.save(path, array) if fmt == "npy" else np.savez(path, x=array)
        return path, truth
    if fmt == "csv":
        if dtype not in ("uint8", "int64", "float32", "float64"):
            return None
        flat = stored.reshape(len(stored), -1)
        header = layout == "NHW"  # one case with a header, one without
        lines = ([",".join(f"p{j}" for j in range(flat.shape[1]))] if header else []) + \
            [",".join(str(v) for v in row) for row in flat]
        path = tmp / "x.csv"
        path.write_text("\n".join(lines) + "\n")
        return path, truth
    folder = tmp / fmt
    folder.mkdir()
    for i, image in enumerate(stored):
        if fmt == "png-folder" and dtype in ("uint8", "bool"):
            Image.fromarray(image.astype(np.uint8) * (255 if dtype == "bool" else 1)).save(folder / f"{i}.png")
        elif fmt == "png-folder" and dtype == "uint16":
            Image.fromarray(image.astype(np.uint16)).save(folder / f"{i}.png")
        elif fmt == "tiff-folder" and dtype in ("float32", "float64"):
            Image.fromarray(image.astype(np.float32), mode="F").save(folder / f"{i}.tif")
        else:
            return None
    return folder, truth


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fmt=st.sampled_from(FORMATS), dtype=st.sampled_from(DTYPES), layout=st.sampled_from(("NHW", "NHWC", "NCHW")),
       seed=st.integers(0, 2**16), dim=st.booleans())
def test_every_source_reads_pixels_within_one_level_or_is_refused(tmp_path_factory, fmt, dtype, layout, seed, dim):
    from vae_tools.data import load_dataset
    from vae_tools.errors import DataError

    rng = np.random.default_rng(seed)
    pixels = rng.random((3, 6, 6)) * (0.05 if dim else 1.0)  # a dim file must not be stretched to full scale
    written = write_source(tmp_path_factory.mktemp("src"), fmt, pixels, dtype, layout)
    if written is None:
        return
    path, truth = written
    try:
        dataset = load_dataset(str(path))
        x = dataset.batch(np.arange(len(dataset))).numpy()[:, 0]
    except DataError as exc:
        assert str(path) in str(exc) or path.name in str(exc)
        assert dtype in ("int64", "int32") or (fmt == "csv" and dtype.startswith("float") and dim is False), exc
        return
    assert dtype not in ("int64", "int32") or fmt == "csv", "an integer type without a scale must be refused"
    if fmt.endswith("folder"):
        order = np.argsort([int(Path(i).stem) for i in dataset.ids])
        x = x[order]
    assert np.abs(x - truth).max() <= 1 / 255 + 1e-6


def test_class_folders_that_are_links_are_followed_and_loops_refused(tmp_path):
    from vae_tools.data import load_dataset
    from vae_tools.errors import DataError

    elsewhere = tmp_path / "store" / "cats"
    elsewhere.mkdir(parents=True)
    Image.fromarray(make_images(n=1, size=12)[0][0]).save(elsewhere / "a.png")
    root = tmp_path / "data"
    (root / "dogs").mkdir(parents=True)
    Image.fromarray(make_images(n=1, size=12)[0][0]).save(root / "dogs" / "b.png")
    (root / "cats").symlink_to(elsewhere, target_is_directory=True)
    assert sorted(load_dataset(str(root)).ids) == ["cats/a.png", "dogs/b.png"]
    (root / "dogs" / "again").symlink_to(root, target_is_directory=True)
    with pytest.raises(DataError, match="through a symbolic link"):
        load_dataset(str(root))


def test_an_empty_float_array_is_one_line(tmp_path):
    np.save(tmp_path / "e.npy", np.zeros((0, 8, 8), dtype=np.float32))
    line = one_error_line(invoke("train", "--data", tmp_path / "e.npy", "--out", tmp_path / "r", "--quiet", ok=False))
    assert "the data set is empty" in line


# --- aliasing: whatever --out names, only the command's own output set changes --------------------

PLACES = ("fresh", "data-file", "data-folder", "inside-data-folder", "run-folder", "run-file", "beside-run-file",
          "link-to-data", "parent-of-data", "embeddings")
COMMANDS = {
    "embed": lambda w, out: ["embed", "--model", w / "run", "--data", w / "bars.npz", "--out", out, "--quiet"],
    "embed-folder": lambda w, out: ["embed", "--model", w / "run", "--data", w / "images", "--out", out, "--quiet"],
    "cluster": lambda w, out: ["cluster", "--embeddings", w / "latents.parquet", "--out", out, "--clusters", "2",
                               "--features", "latents", "--reduce", "none"],
    "denoise": lambda w, out: ["denoise", "--model", w / "run", "--data", w / "images", "--out", out, "--quiet"],
    "reconstruct": lambda w, out: ["reconstruct", "--model", w / "run", "--data", w / "bars.npz", "--out", out,
                                   "--n", "4"],
    "train": lambda w, out: ["train", "--data", w / "bars.npz", "--out", out, *FAST],
}


def place(world: Path, kind: str, scratch: Path, command: str) -> Path:
    suffix = ".parquet" if command.startswith("embed") else ""
    return {
        "fresh": scratch / f"new{suffix}", "data-file": world / "bars.npz", "data-folder": world / "images",
        "inside-data-folder": world / "images" / f"out{suffix}", "run-folder": world / "run",
        "run-file": world / "run" / ("history.csv" if suffix else "config.json"),
        "beside-run-file": world / "run" / f"extra{suffix or '.d'}", "link-to-data": scratch / "link.npz",
        "parent-of-data": world, "embeddings": world / "latents.parquet",
    }[kind]


INPUTS = {"embed": ("run", "bars.npz"), "embed-folder": ("run", "images"), "cluster": ("latents.parquet",),
          "denoise": ("run", "images"), "reconstruct": ("run", "bars.npz"), "train": ("bars.npz",)}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(command=st.sampled_from(sorted(COMMANDS)), kind=st.sampled_from(PLACES))
def test_only_the_output_set_changes_whatever_out_names(world, tmp_path_factory, command, kind):
    """Every input stays byte-identical, and every change lies inside --out (resolved or as written)."""
    scratch = tmp_path_factory.mktemp("scratch")
    (scratch / "link.npz").symlink_to(world / "bars.npz")
    out = place(world, kind, scratch, command)
    contents = {p: p.read_bytes() for p in world.rglob("*") if p.is_file()}
    before = snapshot(world)
    try:
        result = invoke(*COMMANDS[command](world, out), ok=False)
        assert "Traceback" not in result.output, result.output
        if result.exit_code != 0:
            one_error_line(result)
        after = snapshot(world)
        for name in INPUTS[command]:  # every file an input held is there, unchanged (new ones may sit beside)
            held = [k for k in before if k == name or k.startswith(name + "/")]
            assert held and all(after.get(k) == before[k] for k in held), f"{command} --out {kind}: changed {name}"
        targets = {out.absolute(), out.resolve()}
        for name in {n for n in set(before) | set(after) if before.get(n) != after.get(n)}:
            path = world / name
            if path.name == RECORD_FILE and path.parent in {t.parent for t in targets}:
                continue  # a file output's record sits in the folder that holds it
            assert any(path == t or t in path.parents for t in targets), f"{command} --out {kind}: changed {name}"
    finally:  # the next case sees the same world
        for path in sorted(world.rglob("*"), key=lambda p: -len(p.parts)):
            if path.is_file() and path not in contents:
                path.unlink()
            elif path.is_dir() and not any(path.iterdir()) and path not in {p.parent for p in contents}:
                path.rmdir()
        for path, data in contents.items():
            if not path.is_file() or path.read_bytes() != data:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)


# --- Ctrl-C at any point of a pipeline's training keeps the finished epochs -----------------------

@pytest.mark.parametrize("where", ["vaetools_pipelines.safe_paths.check_command_paths",
                                   "vaetools_pipelines.runner.split_chain", "vaetools_pipelines.runner.check_pipeline"])
def test_ctrl_c_before_any_step_prints_the_line_that_continues(tmp_path, monkeypatch, where):
    """Wherever the interrupt lands before a step has started, one line says how to go on."""
    import importlib

    module, name = where.rsplit(".", 1)
    monkeypatch.setattr(importlib.import_module(module), name, lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    line = one_error_line(invoke("chain", "--data", "my data.npz", "--out", tmp_path / "r 1", "train", "--epochs", "3",
                                 ok=False), code=130)
    again = shlex.split(line.split("continue with: ", 1)[1])
    assert again == ["vaetools", "chain", "--data", "my data.npz", "--out", str(tmp_path / "r 1"), "train", "--epochs", "3"]
    assert not (tmp_path / "r 1").exists()


def _start_chain(data: Path, run: Path, epochs: int) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "vaetools_pipelines", "chain", "--data", str(data), "--out", str(run),
               "train", *tiny_training(epochs)[2:], "--epochs", str(epochs), "--set", "patience=1000"]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


@pytest.fixture
def busy_machine():
    """Two processes that keep two cores busy beside the command, as another job on the machine
    would; calling what it gives stops them."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]

    def stop():
        for hog in hogs:
            hog.kill()
            hog.wait()

    try:
        yield stop
    finally:
        stop()


EPOCHS = 80  # more than fit in the latest random moment with the cores busy
RANDOM_MOMENTS = np.random.default_rng().uniform(0.3, 9.0, size=2)  # start-up, reading, building or training


@pytest.mark.parametrize("stop_at, how", [(1, signal.SIGINT), (2, signal.SIGKILL),
                                         (float(RANDOM_MOMENTS[0]), signal.SIGINT),
                                         (float(RANDOM_MOMENTS[1]), signal.SIGKILL)])
def test_stopping_a_pipelines_training_keeps_its_epochs_and_the_printed_line_continues_it(world, tmp_path, stop_at, how,
                                                                                       busy_machine):
    """stop_at: a whole number of finished epochs, or a random moment in seconds (while Python
    starts, the data are read, the model built or an epoch runs), with two other jobs on the cores."""
    data = tmp_path / "my data.npz"  # a space: the printed line must be pasteable as it is
    images, labels = make_images(n=200, size=12)
    np.savez(data, x=images, y=labels)
    run = tmp_path / "p"
    partial = run / ".model.partial"
    process = _start_chain(data, run, epochs=EPOCHS)
    started = time.monotonic()
    while time.monotonic() - started < 240 and process.poll() is None:
        if isinstance(stop_at, float):
            if time.monotonic() - started >= stop_at:
                break
        else:
            try:
                if json.loads((partial / "training_state.json").read_text())["epoch"] >= stop_at:
                    break
            except (OSError, ValueError, KeyError):
                pass
        time.sleep(0.02)
    assert process.poll() is None, "the training ended before it could be stopped; give it more epochs"
    process.send_signal(how)
    output = process.communicate(timeout=120)[0]
    busy_machine()  # the continuation may run alone
    kept = kept_history(partial)
    assert isinstance(stop_at, float) or len(kept) >= stop_at, output
    assert not (run / "model").exists(), output
    if how == signal.SIGINT:
        assert process.returncode == 130, output
        lines = [line for line in output.splitlines() if line.startswith("Error:")]
        assert len(lines) == 1 and "interrupted" in lines[0] and "Traceback" not in output, output
        if "continue with" not in lines[0]:  # stopped while Python was still importing the command
            assert not run.exists(), output
            return
        again = shlex.split(re.search(r"continue with: (.*)$", lines[0]).group(1))
        assert again[0] == "vaetools" and str(data) in again
        command = [sys.executable, "-m", "vaetools_pipelines", *again[1:]]
    else:  # killed: the same command continues
        command = [sys.executable, "-m", "vaetools_pipelines", "chain", "--data", str(data), "--out", str(run),
                   "train", *tiny_training(EPOCHS)[2:], "--epochs", str(EPOCHS), "--set", "patience=1000"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert not kept or "continuing the interrupted run" in done.stdout
    history = json.loads((run / "model" / "training_state.json").read_text())["history"]
    assert [(row["epoch"], row["train_loss"]) for row in history[:len(kept)]] == \
        [(row["epoch"], row["train_loss"]) for row in kept]
    assert len(history) > len(kept) and not partial.exists()


def kept_history(partial: Path) -> list:
    """The epochs a partial training folder keeps: those its training state (the file that commits
    an epoch) holds."""
    from safetensors import safe_open

    state = partial / "training_state.safetensors"
    if not state.exists():
        return []
    with safe_open(str(state), framework="pt") as handle:
        return json.loads(handle.metadata()["progress"])["history"]


def test_train_stopped_before_its_first_epoch_prints_a_line_that_works(world, tmp_path, monkeypatch):
    """Before an epoch is kept there is nothing to resume: the line is the command as typed."""
    from vae_tools.training import trainer

    real = trainer._Epochs.train_and_validate
    monkeypatch.setattr(trainer._Epochs, "train_and_validate",
                        lambda self, epoch: (_ for _ in ()).throw(KeyboardInterrupt))
    out = tmp_path / "my run"
    line = one_error_line(invoke("train", "--data", world / "bars.npz", "--out", out, *FAST, ok=False), code=130)
    again = shlex.split(line.split("continue with: ", 1)[1])
    assert again[:2] == ["vaetools", "train"] and "--resume" not in again and str(out) in again
    monkeypatch.setattr(trainer._Epochs, "train_and_validate", real)
    invoke(*again[1:])
    assert (out / "model.safetensors").is_file()


def test_train_stopped_after_an_epoch_continues_with_resume(world, tmp_path, monkeypatch):
    from vae_tools.training import trainer

    real, calls = trainer._Epochs.train_and_validate, []

    def second_epoch_interrupted(self, epoch):
        calls.append(epoch)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(self, epoch)

    monkeypatch.setattr(trainer._Epochs, "train_and_validate", second_epoch_interrupted)
    out = tmp_path / "r"
    line = one_error_line(invoke("train", "--data", world / "bars.npz", "--out", out, *tiny_training(3), ok=False),
                          code=130)
    again = shlex.split(line.split("continue with: ", 1)[1])
    assert again[-1] == "--resume"
    invoke(*again[1:])
    assert len(json.loads((out / "training_state.json").read_text())["history"]) == 3


def test_a_kill_between_an_epochs_files_keeps_that_epoch_or_the_one_before(world, tmp_path, monkeypatch):
    """Whichever of an epoch's files a kill lands between, the folder resumes from a whole epoch."""
    from vae_tools import run_folder
    from vae_tools.training import trainer

    out = tmp_path / "r"
    invoke("train", "--data", world / "bars.npz", "--out", out, *tiny_training(2))
    for failing in range(4):  # the epoch's four writes: weights, state, its readable copy, history
        copy = tmp_path / f"r{failing}"
        __import__("shutil").copytree(out, copy)
        real, writes = run_folder.atomic_path, []

        def dies_at(target, failing=failing, real=real, writes=writes):
            writes.append(target)
            if len(writes) > failing:
                raise SystemExit("killed")
            return real(target)

        monkeypatch.setattr(run_folder, "atomic_path", dies_at)
        with pytest.raises(SystemExit):
            trainer.train(*_resume_args(world, copy))
        monkeypatch.setattr(run_folder, "atomic_path", real)
        result = trainer.train(*_resume_args(world, copy))
        assert len(result.history) == 3, failing


def _resume_args(world: Path, run: Path):
    import dataclasses

    from vae_tools.config import TrainConfig
    from vae_tools.data import load_dataset
    from vae_tools.run_folder import read_run_config

    stored = read_run_config(run)["training"]
    config = dataclasses.replace(TrainConfig(**stored), epochs=3)
    return load_dataset(str(world / "bars.npz")), config, run, True, False


def test_ctrl_c_while_python_imports_the_command_is_one_line_and_130(tmp_path):
    """The first moments of a command: Python importing torch and the steps."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for k, moment in enumerate(np.random.default_rng().uniform(0.15, 1.2, size=2)):
        process = subprocess.Popen([sys.executable, "-m", "vaetools_pipelines", "train", "--data", "digits", "--out",
                                    str(tmp_path / f"r{k}"), "--quiet"], stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, env=env)
        time.sleep(moment)
        process.send_signal(signal.SIGINT)
        output = process.communicate(timeout=60)[0]
        lines = [line for line in output.splitlines() if line.strip()]
        assert process.returncode == 130 and "Traceback" not in output, (moment, output)
        assert len(lines) == 1 and lines[0].startswith("Error:") and "interrupted" in lines[0], (moment, output)


def test_an_interrupt_that_something_swallows_is_raised_again_until_the_command_takes_it():
    """Python drops a KeyboardInterrupt raised inside a finaliser; the command must still stop."""
    code = """if True:
        import time
        from vaetools_pipelines import launch
        launch._install()
        print("ready", flush=True)
        try:
            try:
                time.sleep(5)
            except KeyboardInterrupt:
                print("swallowed", flush=True)  # as a finaliser would
            started = time.monotonic()
            while time.monotonic() - started < 20:
                time.sleep(0.05)
            print("went on")
        except KeyboardInterrupt:
            launch.interrupt_taken()
            print("raised again", flush=True)
            time.sleep(5)  # taken: no more interrupts
            print("quiet after", flush=True)
    """
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "ready"
    process.send_signal(signal.SIGINT)
    output = process.communicate(timeout=60)[0].split()
    assert output == ["swallowed", "raised", "again", "quiet", "after"] and process.returncode == 0
