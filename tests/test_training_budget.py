"""The training time budget: the default length cut to the epochs that fit, stated up front,
kept across a resume, and never applied to a length the user set."""

import json

import numpy as np
import pytest
import torch

from conftest import invoke, make_images
from vae_tools.config import TrainConfig
from vae_tools.errors import ConfigError
from vae_tools.models.conv_vae import ConvVAE
from vae_tools.models.defaults import PHOTO_CPU_MINUTES
from vae_tools.models.photo_vae import PhotoVAE
from vae_tools.training.budget import budget_minutes, epochs_within

SMALL = ["--batch-size", "16", "--latent-dim", "4", "--set", "hidden_dim=32", "--set", "widths=[8, 16]",
         "--set", "min_steps=60", "--set", "patience=30"]


def test_the_planned_length_is_cut_to_what_fits_at_the_mean_pace():
    assert epochs_within(10, [60.0, 60.0, 60.0], planned=30) == 10  # 3 min spent, 7 more epochs of a minute
    assert epochs_within(10, [50.0, 70.0], planned=30) == 10
    assert epochs_within(100, [60.0], planned=30) == 30  # a budget never stretches the length
    assert epochs_within(1, [90.0, 90.0], planned=30) == 2  # over budget: stop at the epochs done
    assert epochs_within(1, [], planned=30) == 30
    assert epochs_within(None, [90.0, 90.0], planned=30) == 30  # no budget: the length as planned


def test_the_budget_comes_from_the_config_else_the_model_on_a_cpu_and_never_with_set_epochs():
    photo, conv = PhotoVAE((3, 16, 16)), ConvVAE((1, 12, 12), latent_dim=4, widths=[8, 16], hidden_dim=32)
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert budget_minutes(TrainConfig(), photo, cpu) == PHOTO_CPU_MINUTES
    assert budget_minutes(TrainConfig(), photo, gpu) is None
    assert budget_minutes(TrainConfig(), conv, cpu) is None
    assert budget_minutes(TrainConfig(budget_minutes=7), conv, gpu) == 7
    assert budget_minutes(TrainConfig(budget_minutes=7, epochs=3), photo, cpu) is None
    for bad in (0, -1, float("inf")):
        with pytest.raises(ConfigError, match="budget_minutes"):
            TrainConfig(budget_minutes=bad).validate()


def test_a_budget_cuts_the_run_says_so_and_a_resume_with_a_larger_one_goes_on(tmp_path):
    images, labels = make_images(n=40, size=12)
    np.savez(tmp_path / "bars.npz", x=images, y=labels)
    run = tmp_path / "run"
    result = invoke("train", "--data", tmp_path / "bars.npz", "--out", run, *SMALL, "--budget-minutes", "1e-6")
    config = json.loads((run / "config.json").read_text())
    length = config["choices"]["training_length"]
    assert length["epochs"] == 30 and length["budget_minutes"] == 1e-6
    assert "within a training budget of 1e-06 min" in result.output  # stated before the first epoch
    assert "fits 1 epochs at this pace, not 30" in result.output
    state = json.loads((run / "training_state.json").read_text())
    assert state["epoch"] == 1 and len(state["history"]) == 1
    assert (run / "model.safetensors").exists() and (run / "latent_summary.safetensors").exists()

    invoke("train", "--data", tmp_path / "bars.npz", "--out", run, "--resume", "--budget-minutes", "1000", "--quiet")
    assert json.loads((run / "training_state.json").read_text())["epoch"] == 30


def test_a_set_length_runs_in_full_whatever_the_budget(tmp_path):
    images, labels = make_images(n=40, size=12)
    np.savez(tmp_path / "bars.npz", x=images, y=labels)
    invoke("train", "--data", tmp_path / "bars.npz", "--out", tmp_path / "run", *SMALL, "--budget-minutes", "1e-6",
           "--epochs", "3", "--quiet")
    assert json.loads((tmp_path / "run" / "training_state.json").read_text())["epoch"] == 3
