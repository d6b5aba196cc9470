"""The training precision: bf16 by default only for a model measured in it, on a CPU that has bf16
natively; a set amp decides alone; the choice and its reason are recorded in the run folder."""

import json

import numpy as np
import pytest
import torch

from conftest import invoke, make_images
from vae_tools.config import TrainConfig, load_config
from vae_tools.errors import ConfigError
from vae_tools.models.conv_vae import ConvVAE
from vae_tools.models.photo_vae import PhotoVAE
from vae_tools.training import loop
from vae_tools.training.loop import autocast_for, cpu_has_bf16
from vae_tools.training.precision import precision

CPU = torch.device("cpu")


@pytest.fixture
def conv():
    return ConvVAE((1, 12, 12), latent_dim=4, widths=[8, 16], hidden_dim=32)


@pytest.mark.parametrize("native", [True, False])
def test_by_default_the_conv_model_trains_in_bf16_exactly_where_the_cpu_has_it(monkeypatch, conv, native):
    monkeypatch.setattr(loop, "cpu_has_bf16", lambda: native)
    choice = precision(TrainConfig(), conv, CPU)
    assert choice["value"] == ("bf16" if native else "fp32")
    assert choice.get("automatic", True)
    assert ("natively" if native else "no native bf16") in choice["why"]
    context, scaler = autocast_for(CPU, choice["value"] == "bf16")
    assert scaler is None
    assert isinstance(context, torch.autocast) == native


def test_a_model_not_measured_in_bf16_stays_in_fp32_and_a_gpu_too(monkeypatch, conv):
    monkeypatch.setattr(loop, "cpu_has_bf16", lambda: True)
    photo = precision(TrainConfig(), PhotoVAE((3, 16, 16)), CPU)
    assert photo["value"] == "fp32" and "photo model" in photo["why"] and "amp=true" in photo["why"]
    assert precision(TrainConfig(), conv, torch.device("cuda"))["value"] == "fp32"


def test_a_set_amp_decides_and_says_when_the_device_cannot(monkeypatch, conv):
    monkeypatch.setattr(loop, "cpu_has_bf16", lambda: True)
    assert precision(TrainConfig(amp=False), conv, CPU) == {"value": "fp32", "automatic": False,
                                                             "why": "set by the user (amp)"}
    assert precision(TrainConfig(amp=True), PhotoVAE((3, 16, 16)), CPU)["value"] == "bf16"
    monkeypatch.setattr(loop, "cpu_has_bf16", lambda: False)
    short = precision(TrainConfig(amp=True), conv, CPU)
    assert short["value"] == "fp32" and "no native bf16" in short["why"]


def test_amp_is_true_false_or_unset_in_a_config():
    assert load_config(overrides={"amp": "true"}).amp is True
    assert load_config(overrides={"amp": "off"}).amp is False
    assert load_config().amp is None
    with pytest.raises(ConfigError, match="amp"):
        load_config(overrides={"amp": "sometimes"})
    with pytest.raises(ConfigError, match="amp must be true or false"):
        TrainConfig(amp="yes").validate()


def test_the_run_folder_records_the_precision_it_trained_in(tmp_path):
    images, labels = make_images(n=40, size=12)
    np.savez(tmp_path / "bars.npz", x=images, y=labels)
    small = ["--batch-size", "16", "--latent-dim", "4", "--set", "hidden_dim=32", "--set", "widths=[8, 16]",
             "--epochs", "1"]
    result = invoke("train", "--data", tmp_path / "bars.npz", "--out", tmp_path / "run", *small)
    choice = json.loads((tmp_path / "run" / "config.json").read_text())["choices"]["precision"]
    assert choice["value"] == ("bf16" if cpu_has_bf16() else "fp32")
    assert f"precision: {choice['why']}" in result.output
    invoke("train", "--data", tmp_path / "bars.npz", "--out", tmp_path / "fp32", *small, "--set", "amp=false")
    choice = json.loads((tmp_path / "fp32" / "config.json").read_text())["choices"]["precision"]
    assert choice == {"value": "fp32", "automatic": False, "why": "set by the user (amp)"}
