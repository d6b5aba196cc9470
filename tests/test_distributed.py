"""Two processes under torchrun with the gloo backend (CPU): DDP training agrees with one process,
distributed embedding keeps every id once and in order, and a killed DDP run resumes."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from safetensors.torch import load_file

from conftest import make_images
from vae_tools.config import TrainConfig
from vae_tools.data import load_dataset
from vae_tools.embedding import embed, latent_matrix
from vae_tools.tables import read_table
from vae_tools.training import train

ROOT = Path(__file__).resolve().parents[1]
TORCHRUN = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
pytestmark = pytest.mark.skipif(TORCHRUN is None, reason="torchrun is not installed")
SMALL = ["--epochs", "2", "--batch-size", "32", "--latent-dim", "4", "--set", "hidden_dim=32",
         "--set", "widths=[8,16]", "--device", "cpu", "--quiet"]


def torchrun(*args, cwd, **kwargs):
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests'}", "OMP_NUM_THREADS": "1"}
    command = [TORCHRUN, "--standalone", "--nproc-per-node", "2", *args]
    if kwargs.pop("background", False):
        return subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=180)
    if kwargs.pop("ok", True):
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def bars(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ddp")
    images, labels = make_images(n=400, size=16, seed=1)
    np.savez(folder / "bars.npz", x=images, y=labels)
    return folder


def test_ddp_training_matches_one_process_and_ranks_agree(bars):
    torchrun(str(ROOT / "tests" / "ddp_worker.py"), "bars.npz", ".", cwd=bars)
    first, second = (load_file(str(bars / f"weights_rank{r}.safetensors")) for r in (0, 1))
    assert first.keys() == second.keys()
    for name in first:
        assert np.array_equal(first[name].numpy(), second[name].numpy()), name
    # Label fine-tuning runs through the same loop, so DDP keeps the ranks' weights identical there too.
    tuned = [load_file(str(bars / f"tuned_rank{r}.safetensors")) for r in (0, 1)]
    assert any(not np.array_equal(tuned[0][n].numpy(), first[n].numpy()) for n in first)
    for name in first:
        assert np.array_equal(tuned[0][name].numpy(), tuned[1][name].numpy()), name
    config = TrainConfig(epochs=2, batch_size=32, latent_dim=4, hidden_dim=32, widths=[8, 16], device="cpu")
    single = train(load_dataset(str(bars / "bars.npz")), config, progress=False)
    for r in (0, 1):
        ddp_val = float((bars / f"val_loss_rank{r}.txt").read_text())
        assert ddp_val == pytest.approx(single.history[-1]["val_loss"], rel=0.02)
    # Embedding under DDP: every id once, in input order, the same latents as one process.
    reference = embed(single.model, load_dataset(str(bars / "bars.npz")))
    ddp_model_latents = embed(_with_weights(single.model, first), load_dataset(str(bars / "bars.npz")))
    for r in (0, 1):
        ids = (bars / f"ids_rank{r}.txt").read_text().split("\n")
        assert ids == list(reference["id"])
        assert np.allclose(np.load(bars / f"latents_rank{r}.npy"), latent_matrix(ddp_model_latents), atol=1e-5)


def _with_weights(model, state):
    import copy

    other = copy.deepcopy(model)
    other.load_state_dict(state)
    return other


def test_ddp_embed_command_writes_each_id_once_in_order(bars):
    subprocess.run([sys.executable, "-m", "vaetools_pipelines.cli", "train", "--data", "bars.npz", "--out", "one", *SMALL],
                   cwd=bars, check=True, capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    done = torchrun("-m", "vaetools_pipelines.cli", "embed", "--model", "one", "--data", "bars.npz", "--out", "two.parquet",
                    "--elbo", "--device", "cpu", "--quiet", cwd=bars)
    assert done.stdout.count("wrote 400 rows") == 1  # only the first process writes and reports
    subprocess.run([sys.executable, "-m", "vaetools_pipelines.cli", "embed", "--model", "one", "--data", "bars.npz",
                    "--out", "one.parquet", "--elbo", "--device", "cpu", "--quiet"],
                   cwd=bars, check=True, capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    one, two = pd.read_parquet(bars / "one.parquet"), pd.read_parquet(bars / "two.parquet")
    assert list(two["id"]) == list(one["id"]) and two["id"].is_unique
    mu = [c for c in one.columns if c.startswith("mu_")]
    assert np.abs(two[mu].to_numpy() - one[mu].to_numpy()).max() < 1e-5
    assert np.array_equal(two["label"], one["label"])
    assert two["kl"].to_numpy() == pytest.approx(one["kl"].to_numpy(), abs=1e-4)

    # Partitioned: each process writes its own contiguous part; read back, the folder is the same table.
    parted = torchrun("-m", "vaetools_pipelines.cli", "embed", "--model", "one", "--data", "bars.npz", "--out", "parts.parquet",
                      "--partitioned", "--device", "cpu", "--quiet", cwd=bars)
    assert "wrote 400 rows to parts.parquet (one part per process)" in parted.stdout
    assert sorted(p.name for p in (bars / "parts.parquet").iterdir() if not p.name.startswith(".")) == ["_SUCCESS", "part-00000.parquet",
                                                                         "part-00001.parquet"]
    for table in (pd.read_parquet(bars / "parts.parquet"), read_table(bars / "parts.parquet")):
        assert list(table["id"]) == list(one["id"])
        assert np.abs(table[mu].to_numpy() - one[mu].to_numpy()).max() < 1e-5
    assert len(pd.read_parquet(bars / "parts.parquet" / "part-00000.parquet")) == 200

    # Fewer rows than processes: the process with none writes no part, and the earlier run's parts go.
    x, y = np.load(bars / "bars.npz")["x"][:1], np.load(bars / "bars.npz")["y"][:1]
    np.savez(bars / "one_image.npz", x=x, y=y)
    torchrun("-m", "vaetools_pipelines.cli", "embed", "--model", "one", "--data", "one_image.npz", "--out", "parts.parquet",
             "--partitioned", "--device", "cpu", "--quiet", cwd=bars)
    assert len(list((bars / "parts.parquet").glob("part-*.parquet"))) == 1
    for table in (pd.read_parquet(bars / "parts.parquet"), read_table(bars / "parts.parquet")):
        assert list(table["id"]) == [one["id"][0]]
        assert np.abs(table[mu].to_numpy() - one[mu].to_numpy()[:1]).max() < 1e-5


def test_a_bad_file_in_one_processes_block_is_one_error_line_not_a_gloo_traceback(bars, tmp_path):
    from PIL import Image

    subprocess.run([sys.executable, "-m", "vaetools_pipelines.cli", "train", "--data", "bars.npz", "--out",
                    str(tmp_path / "m"), *SMALL], cwd=bars, check=True, capture_output=True)
    folder = tmp_path / "images"
    folder.mkdir()
    for i, image in enumerate(np.load(bars / "bars.npz")["x"][:40]):
        Image.fromarray(image).save(folder / f"{i:03d}.png")
    whole = (folder / "039.png").read_bytes()
    (folder / "039.png").write_bytes(whole[: len(whole) // 2])  # the header reads, the pixels do not
    done = torchrun("-m", "vaetools_pipelines.cli", "embed", "--model", str(tmp_path / "m"), "--data", str(folder),
                    "--out", str(tmp_path / "e.parquet"), "--device", "cpu", "--quiet", cwd=bars, ok=False)
    output = done.stdout + done.stderr
    assert done.returncode != 0 and not (tmp_path / "e.parquet").exists()
    errors = [line for line in output.splitlines() if line.startswith("Error:")]
    assert any("039.png: cannot decode image" in line for line in errors), output[-3000:]
    assert "gloo" not in output.lower() and "pair.cc" not in output, output[-3000:]


def descendants(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        children = (task / "children").read_text().split() if (task / "children").exists() else []
        for child in map(int, children):
            found += [child, *descendants(child)]
    return found


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="finds torchrun's workers through /proc")
def test_a_killed_ddp_run_resumes_under_ddp_and_in_one_process(bars):
    def train_args(epochs, *extra):
        options = [a if a != "2" else str(epochs) for a in SMALL]  # "2" is only the epoch count in SMALL
        return ["-m", "vaetools_pipelines.cli", "train", "--data", "bars.npz", "--out", "killed", *options, *extra]

    job = torchrun(*train_args(40), cwd=bars, background=True)
    state = bars / "killed" / "training_state.json"
    deadline = time.time() + 120
    while time.time() < deadline and job.poll() is None:
        if state.exists() and json.loads(state.read_text())["epoch"] >= 2:
            break
        time.sleep(0.05)
    assert job.poll() is None, "the run ended before it could be killed"
    for pid in [job.pid, *descendants(job.pid)]:  # torchrun starts its workers in their own sessions
        os.kill(pid, signal.SIGKILL)
    job.wait()
    killed_at = json.loads(state.read_text())["epoch"]
    assert 2 <= killed_at < 40
    torchrun(*train_args(killed_at + 2, "--resume"), cwd=bars)
    subprocess.run([sys.executable, *train_args(killed_at + 3, "--resume")], cwd=bars, check=True,
                   capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    history = pd.read_csv(bars / "killed" / "history.csv")
    assert list(history["epoch"]) == list(range(1, killed_at + 4))
    assert json.loads((bars / "killed" / "config.json").read_text())["choices"]["processes"] == 1


def test_ddp_anomalies_and_denoise_write_what_one_process_writes(bars):
    """Each process scores (or cleans) its own block of whole batches; the blocks are gathered in
    order and only the first process writes, so the files equal a single process's."""
    subprocess.run([sys.executable, "-m", "vaetools_pipelines.cli", "train", "--data", "bars.npz", "--out", "scorer", *SMALL],
                   cwd=bars, check=True, capture_output=True)
    common = ["--model", "scorer", "--data", "bars.npz", "--device", "cpu", "--quiet", "--batch-size", "64"]
    anomalies = [*common, "--samples", "4", "--plant", "5", "--normal-labels", "0"]
    subprocess.run([sys.executable, "-m", "vaetools_pipelines.cli", "anomalies", *anomalies, "--out", "a1"], cwd=bars, check=True,
                   capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    done = torchrun("-m", "vaetools_pipelines.cli", "anomalies", *anomalies, "--out", "a2", cwd=bars)
    assert done.stdout.count("images flagged") == 1  # one process reports and writes
    one, two = (pd.read_csv(bars / name / "anomalies.csv", dtype={"id": str}) for name in ("a1", "a2"))
    assert list(one["id"]) == list(two["id"]) and len(one) == 405
    assert np.allclose(one["score"], two["score"], rtol=1e-5, atol=1e-4)
    metrics = [json.loads((bars / name / "metrics.json").read_text()) for name in ("a1", "a2")]
    assert metrics[0]["n_anomalies"] == metrics[1]["n_anomalies"]
    assert metrics[0]["truth"]["auroc"] == pytest.approx(metrics[1]["truth"]["auroc"], abs=1e-6)

    denoise = [*common, "--add-noise", "gaussian:0.3", "--seed", "4"]
    subprocess.run([sys.executable, "-m", "vaetools_pipelines.cli", "denoise", *denoise, "--out", "d1"], cwd=bars, check=True,
                   capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    torchrun("-m", "vaetools_pipelines.cli", "denoise", *denoise, "--out", "d2", cwd=bars)
    first, second = (np.load(bars / name / "denoised.npz") for name in ("d1", "d2"))
    assert first.files == second.files
    for key in first.files:
        if first[key].dtype.kind == "f":
            assert np.allclose(first[key], second[key], atol=1e-5), key
        else:
            assert np.array_equal(first[key], second[key]), key
    assert json.loads((bars / "d1" / "metrics.json").read_text())["psnr_db"] == pytest.approx(
        json.loads((bars / "d2" / "metrics.json").read_text())["psnr_db"], abs=1e-4)
