"""The batch size, learning rate, compilation and decoding workers chosen for the device: a CPU keeps
the settings every CPU figure was measured with, a GPU gets batches that fill it."""

import json
import math

import numpy as np
import pytest
import torch

from vae_tools.config import TrainConfig
from vae_tools.data import load_dataset
from vae_tools.data.folder import FolderReader
from vae_tools import device_settings as ds
from vae_tools.training import train

CPU, GPU = torch.device("cpu"), torch.device("cuda")
SMALL = dict(latent_dim=4, hidden_dim=32, widths=[8, 16], val_fraction=0.2, seed=0)


def test_a_cpu_keeps_128_images_at_2e3_uncompiled_without_workers():
    config = TrainConfig()
    assert ds.batch_choice(config, CPU, 54_000)["value"] == 128
    assert ds.lr_choice(config, ds.batch_choice(config, CPU, 54_000))["value"] == pytest.approx(2e-3)
    assert ds.compile_choice(config, CPU, 10**9)["value"] is False
    assert ds.workers_choice(config, CPU, FolderReader.__new__(FolderReader), cpus=16)["value"] == 0
    # the same settings on every CPU run, so they are recorded but not printed
    batch = ds.batch_choice(config, CPU, 54_000)
    assert all(c.get("plain") for c in (batch, ds.lr_choice(config, batch),
                                        ds.compile_choice(config, CPU, 10**9)))


@pytest.mark.parametrize("n_train, world, expected", [(54_000, 1, 1024), (20_000, 1, 256), (1_620, 1, 128),
                                                      (500_000, 2, 2048), (54_000, 2, 1024)])
def test_a_gpu_fills_its_batches_while_the_data_gives_50_steps_an_epoch(n_train, world, expected):
    choice = ds.batch_choice(TrainConfig(), GPU, n_train, world)
    assert choice["value"] == expected and not choice.get("plain")
    assert n_train // expected >= ds.MIN_STEPS_PER_EPOCH or expected == ds.CPU_BATCH_SIZE
    # Adam's square-root rule: 8 times the images a step, sqrt(8) times the rate
    assert ds.lr_choice(TrainConfig(), choice)["value"] == pytest.approx(2e-3 * math.sqrt(expected / 128))


def test_set_values_decide_on_every_device():
    config = TrainConfig(batch_size=64, lr=1e-3, compile=True, workers=2)
    for device in (CPU, GPU):
        chosen = [ds.batch_choice(config, device, 54_000), ds.lr_choice(config, ds.batch_choice(config, device, 54_000)),
                  ds.compile_choice(config, device, 10), ds.workers_choice(config, device, None)]
        assert [c["value"] for c in chosen] == [64, 1e-3, True, 2]
        assert not any(c.get("automatic", True) for c in chosen)


def test_a_batch_size_the_user_sets_keeps_the_learning_rate_it_always_had():
    config = TrainConfig(batch_size=1024)
    assert ds.lr_choice(config, ds.batch_choice(config, GPU, 54_000))["value"] == pytest.approx(2e-3)


def test_a_gpu_compiles_only_runs_long_enough_to_pay_for_it():
    assert ds.compile_choice(TrainConfig(), GPU, 57 * 54_000)["value"] is False  # MNIST's default length
    assert ds.compile_choice(TrainConfig(), GPU, 30_000_000)["value"] is True


def test_a_gpu_machine_decodes_image_files_in_workers_but_not_arrays():
    folder = FolderReader.__new__(FolderReader)
    assert ds.workers_choice(TrainConfig(), GPU, folder, cpus=16)["value"] == 8
    assert ds.workers_choice(TrainConfig(), GPU, folder, world=2, cpus=6)["value"] == 2
    assert ds.workers_choice(TrainConfig(), GPU, object(), cpus=16)["value"] == 0


def test_a_cpu_run_records_its_settings_decided_and_says_nothing_of_them(npz_file, tmp_path, capsys):
    train(load_dataset(npz_file), TrainConfig(epochs=1, **SMALL), out_dir=tmp_path / "run", progress=True)
    stored = json.loads((tmp_path / "run" / "config.json").read_text())
    assert (stored["training"]["batch_size"], stored["training"]["lr"]) == (128, pytest.approx(2e-3))
    assert {"batch_size", "lr", "compile", "workers"} <= set(stored["choices"])
    assert stored["choices"]["compile"]["value"] is False and stored["choices"]["workers"]["value"] == 0
    said = "".join(capsys.readouterr())
    assert "batch size:" not in said and "compile:" not in said and "precision:" in said


def test_a_resumed_run_keeps_the_batches_it_was_started_with(npz_file, tmp_path, monkeypatch):
    data = load_dataset(npz_file)
    decided = {"value": 16, "why": "as a GPU would have chosen"}
    monkeypatch.setattr(ds, "batch_choice", lambda *args: decided)
    train(data, TrainConfig(epochs=1, **SMALL), out_dir=tmp_path / "run", progress=False)
    monkeypatch.undo()  # resumed on a device that would choose 128
    stored = json.loads((tmp_path / "run" / "config.json").read_text())["training"]
    resumed = train(data, TrainConfig(**{**stored, "epochs": 2}), out_dir=tmp_path / "run", resume=True, progress=False)
    after = json.loads((tmp_path / "run" / "config.json").read_text())
    assert after["training"]["batch_size"] == 16 and after["choices"]["batch_size"]["why"] == decided["why"]
    assert len(resumed.history) == 2
    assert np.isfinite(resumed.history[-1]["val_loss"])
