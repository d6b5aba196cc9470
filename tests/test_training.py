import json

import numpy as np
import pytest
import torch

from vae_tools.config import TrainConfig, load_config
from vae_tools.data import load_dataset
from vae_tools.errors import ConfigError, RunFolderError, VaeToolsError
from vae_tools.run_folder import load_run
from vae_tools.training import train

SMALL = dict(device="cpu", latent_dim=4, hidden_dim=32, widths=[8, 16], batch_size=16, lr=3e-3, warmup_steps=5)


def small_config(**changes):
    return TrainConfig(**{**SMALL, **changes}).validate()


def test_training_lowers_the_validation_loss(npz_file):
    result = train(load_dataset(npz_file), small_config(epochs=25, patience=25), progress=False)
    first, last = result.history[0]["val_loss"], min(row["val_loss"] for row in result.history)
    assert last < 0.8 * first
    assert result.model.training is False


def test_run_folder_holds_config_weights_state_and_curves(npz_file, tmp_path):
    run = tmp_path / "run"
    result = train(load_dataset(npz_file), small_config(epochs=3), out_dir=run, progress=False)
    names = {p.name for p in run.iterdir()}
    assert {"config.json", "model.safetensors", "training_state.json", "training_state.safetensors",
            "history.csv", "loss_curves.png"} <= names
    assert not [n for n in names if n.endswith(".part")]
    config = json.loads((run / "config.json").read_text())
    assert config["vaetools_version"] and config["model"]["name"] == "conv"
    assert config["preprocessing"] == {"channels": 1, "image_size": [12, 12]}
    # safetensors files start with an 8-byte header length and a JSON header: no pickle inside.
    for name in ("model.safetensors", "training_state.safetensors"):
        head = (run / name).read_bytes()[:9]
        assert head[8:9] == b"{"
    loaded, _ = load_run(run)
    x = load_dataset(npz_file).batch(np.arange(5))
    assert torch.allclose(loaded.encode(x)[0], result.model.cpu().encode(x)[0], atol=1e-5)
    assert (run / "loss_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_resume_continues_exactly_where_an_uninterrupted_run_would_be(npz_file, tmp_path):
    data = load_dataset(npz_file)
    straight = train(data, small_config(epochs=4), out_dir=tmp_path / "straight", progress=False)
    train(data, small_config(epochs=2), out_dir=tmp_path / "split", progress=False)
    resumed = train(data, small_config(epochs=4), out_dir=tmp_path / "split", resume=True, progress=False)
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3, 4]
    np.testing.assert_allclose([r["val_loss"] for r in resumed.history],
                               [r["val_loss"] for r in straight.history], rtol=1e-5)


def test_an_existing_run_is_never_overwritten(npz_file, tmp_path):
    train(load_dataset(npz_file), small_config(epochs=1), out_dir=tmp_path / "run", progress=False)
    before = (tmp_path / "run" / "model.safetensors").read_bytes()
    with pytest.raises(RunFolderError, match="already holds a run"):
        train(load_dataset(npz_file), small_config(epochs=1), out_dir=tmp_path / "run", progress=False)
    assert (tmp_path / "run" / "model.safetensors").read_bytes() == before


def test_early_stopping_when_nothing_improves(npz_file):
    result = train(load_dataset(npz_file), small_config(epochs=30, lr=1e-12, patience=2, warmup_steps=0), progress=False)
    assert result.stopped_early and len(result.history) <= 4


def test_kl_warmup_ramps_beta(npz_file):
    result = train(load_dataset(npz_file), small_config(epochs=4, kl_warmup_epochs=3, beta=2.0), progress=False)
    betas = [row["beta"] for row in result.history]
    assert betas[0] < betas[1] < betas[2] == pytest.approx(2.0) and betas[3] == pytest.approx(2.0)


def test_denoising_model_trains_against_clean_targets(npz_file):
    result = train(load_dataset(npz_file), small_config(epochs=3, model="denoising", noise="salt-pepper:0.3"),
                   progress=False)
    assert type(result.model).__name__ == "DenoisingVAE"
    assert result.history[-1]["val_loss"] < result.history[0]["val_loss"]


def test_damaged_or_foreign_run_folders_are_refused(npz_file, tmp_path):
    run = tmp_path / "run"
    train(load_dataset(npz_file), small_config(epochs=1), out_dir=run, progress=False)
    config = json.loads((run / "config.json").read_text())
    config["format_version"] = 99
    (run / "config.json").write_text(json.dumps(config))
    with pytest.raises(RunFolderError, match="format 99"):
        load_run(run)
    config["format_version"] = 1
    config["model"]["params"]["latent_dim"] = 7
    (run / "config.json").write_text(json.dumps(config))
    with pytest.raises(RunFolderError, match="do not match"):
        load_run(run)
    (run / "config.json").write_text("{not json")
    with pytest.raises(RunFolderError, match="unreadable"):
        load_run(run)
    with pytest.raises(RunFolderError, match="no such run folder"):
        load_run(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunFolderError, match="not a vaetools run folder"):
        load_run(tmp_path / "empty")


def test_config_presets_files_and_overrides(tmp_path):
    assert load_config("denoising").model == "denoising"
    assert load_config("conv", {"epochs": 3}).epochs == 3
    path = tmp_path / "mine.yaml"
    path.write_text("latent_dim: 8\nlr: 1e-3\n")
    assert load_config(str(path)).latent_dim == 8
    path.write_text("latent_dims: 8\n")
    with pytest.raises(ConfigError, match="mine.yaml: unknown option 'latent_dims'"):
        load_config(str(path))
    path.write_text("epochs: many\n")
    with pytest.raises(ConfigError, match="'epochs' has an invalid value"):
        load_config(str(path))
    with pytest.raises(ConfigError, match="val_fraction"):
        load_config(None, {"val_fraction": 1.5})


def test_unavailable_device_is_a_clear_error(npz_file):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(VaeToolsError, match="CUDA is not available"):
        train(load_dataset(npz_file), small_config(epochs=1, device="cuda"), progress=False)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_training_on_cuda_with_mixed_precision(npz_file):
    result = train(load_dataset(npz_file), small_config(epochs=3, device="cuda", amp=True), progress=False)
    assert next(result.model.parameters()).is_cuda
    assert np.isfinite(result.history[-1]["val_loss"]) and result.history[-1]["val_loss"] < result.history[0]["val_loss"]


def test_data_larger_than_the_memory_budget_streams_from_disk(image_folder, monkeypatch):
    from vae_tools.training import trainer

    monkeypatch.setattr(trainer, "IN_MEMORY_LIMIT_BYTES", 0)
    data = load_dataset(image_folder)
    reads = []
    original = data.reader.read
    monkeypatch.setattr(data.reader, "read", lambda rows: reads.append(len(rows)) or original(rows))
    result = train(data, small_config(epochs=2), progress=False)
    assert data._cache is None and max(reads) <= 16 * 2
    assert len(result.history) == 2 and np.isfinite(result.history[-1]["val_loss"])


def test_a_truncated_image_is_named_and_leaves_no_run_behind(image_folder, tmp_path):
    victim = image_folder / "vertical" / "img_001.png"
    victim.write_bytes(victim.read_bytes()[:60])
    with pytest.raises(VaeToolsError, match="img_001.png"):
        train(load_dataset(image_folder), small_config(epochs=1), out_dir=tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_training_leaves_the_callers_random_numbers_alone(images_and_labels):
    from vae_tools.config import load_config
    from vae_tools.sklearn_api import as_dataset
    from vae_tools.training import train

    images, _ = images_and_labels
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    train(as_dataset(images), load_config(None, {"epochs": 1, "latent_dim": 2, "hidden_dim": 8, "widths": [4],
                                                 "batch_size": 16, "device": "cpu", "seed": 7}), progress=False)
    assert torch.equal(torch.rand(3), expected)  # train seeded itself (seed 7) on a fork of the global state


def test_loss_curves_mark_the_epoch_whose_weights_are_kept():
    import pandas as pd

    from vae_tools.training.curves import history_figure

    frame = pd.DataFrame({"epoch": [1, 2, 3, 4], "train_loss": [9, 7, 6, 5], "val_loss": [9.5, 7.2, 7.5, 7.9],
                          "train_recon": [8, 6, 5, 4], "val_recon": [8, 6, 6, 7], "train_kl": [1, 1, 1, 1],
                          "val_kl": [1, 1, 1, 1]})
    figure = history_figure(frame)
    for ax in figure.axes:
        marks = [line for line in ax.lines if list(line.get_xdata()) == [2, 2]]
        assert len(marks) == 1  # epoch 2 has the lowest validation loss
    assert "best epoch (2)" in [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
