"""Hostile files, generated: random bytes and damaged copies of valid files as every kind of input.
Each must be read or refused with a VaeToolsError (one `Error:` line in the CLI), never any other
exception."""

import gzip
import io
import json
import os
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from conftest import invoke, make_images, tiny_training
from vae_tools.errors import VaeToolsError

# VAETOOLS_FUZZ_EXAMPLES raises the count for a longer hunt; derandomized so CI sees the same cases.
FUZZ = settings(max_examples=int(os.environ.get("VAETOOLS_FUZZ_EXAMPLES", 40)), deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _valid_files() -> dict:
    images, labels = make_images(n=6, size=8)
    files = {}
    buffer = io.BytesIO()
    np.savez(buffer, x=images, y=labels)
    files["data.npz"] = buffer.getvalue()
    buffer = io.BytesIO()
    np.save(buffer, images)
    files["data.npy"] = buffer.getvalue()
    idx = bytes([0, 0, 8, 3]) + struct.pack(">III", *images.shape) + images.tobytes()
    files["train-images-idx3-ubyte"] = idx
    files["train-images-idx3-ubyte.gz"] = gzip.compress(idx)
    files["data.csv"] = ("label," + ",".join(f"p{i}" for i in range(64)) + "\n" + "\n".join(
        f"{y}," + ",".join(map(str, row)) for y, row in zip(labels, images.reshape(6, -1)))).encode()
    buffer = io.BytesIO()
    Image.fromarray(images[0]).save(buffer, format="PNG")
    files["folder/a.png"] = buffer.getvalue()
    return files


VALID = _valid_files()


def damaged(original: bytes):
    """Truncated, bit-flipped or overwritten copies of a valid file, plus plain random bytes."""
    cut = st.integers(0, len(original)).map(lambda n: original[:n])
    flips = st.lists(st.tuples(st.integers(0, len(original) - 1), st.integers(0, 255)), min_size=1, max_size=8).map(
        lambda edits: _edit(original, edits))
    return st.one_of(cut, flips, st.binary(max_size=512))


def _edit(original: bytes, edits) -> bytes:
    data = bytearray(original)
    for position, value in edits:
        data[position] = value
    return bytes(data)


def _read(path):
    from vae_tools.data import load_dataset

    dataset = load_dataset(str(path))
    dataset.batch(np.arange(min(len(dataset), 4)))


@pytest.mark.parametrize("name", sorted(VALID))
def test_damaged_data_files_are_read_or_refused_cleanly(tmp_path_factory, name):
    @FUZZ
    @given(payload=damaged(VALID[name]))
    def check(payload):
        root = tmp_path_factory.mktemp("fuzz")
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(payload)
        try:
            _read(path.parent if name.startswith("folder/") else path)
        except VaeToolsError:
            pass

    check()


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                        max_size=4), max_leaves=12)


@FUZZ
@given(params=st.dictionaries(st.sampled_from(["image_shape", "latent_dim", "hidden_dim", "widths", "likelihood",
                                               "activation", "noise", "other"]), json_values, max_size=6))
def test_random_model_descriptions_are_refused_cleanly(tmp_path_factory, params):
    from vae_tools.run_folder import FORMAT, FORMAT_VERSION, load_run

    run = tmp_path_factory.mktemp("run")
    config = {"format": FORMAT, "format_version": FORMAT_VERSION, "model": {"name": "conv", "params": params}}
    (run / "config.json").write_text(json.dumps(config))
    with pytest.raises(VaeToolsError):
        load_run(run)  # there are no weights, so even a valid description ends in a clear error


@FUZZ
@given(text=st.text(max_size=300) | st.sampled_from(["data: digits\nsteps: [train, {embed: 3}]\n",
                                                      "data: digits\nsteps:\n  - cluster: {method: [1]}\n",
                                                      "name: ..\ndata: digits\nsteps: [train]\n", "steps: 7\n"]))
def test_random_pipeline_files_are_read_or_refused_cleanly(tmp_path_factory, text):
    from vaetools_pipelines.runner import load_pipeline

    path = tmp_path_factory.mktemp("yaml") / "p.yaml"
    path.write_text(text)
    try:
        load_pipeline(path)
    except VaeToolsError:
        pass


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    images, labels = make_images(n=24, size=8)
    np.savez(root / "bars.npz", x=images, y=labels)
    invoke("train", "--data", root / "bars.npz", "--out", root / "run", *tiny_training(1))
    return root / "run"


@pytest.mark.parametrize("name", ["data.npz", "train-images-idx3-ubyte.gz", "data.csv"])
def test_the_cli_answers_damaged_data_with_one_error_line(tmp_path_factory, run_folder, name):
    @settings(max_examples=8, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(payload=damaged(VALID[name]))
    def check(payload):
        root = tmp_path_factory.mktemp("clifuzz")
        (root / name).write_bytes(payload)
        result = invoke("embed", "--model", run_folder, "--data", root / name, "--out", root / "e.csv", "--quiet",
                        ok=False)
        assert result.exception is None or isinstance(result.exception, SystemExit), result.output
        if result.exit_code != 0:
            lines = [line for line in result.output.splitlines() if line.strip()]
            assert len(lines) == 1 and lines[0].startswith("Error:"), result.output
            assert not (root / "e.csv").exists()

    check()
