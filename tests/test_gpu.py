"""On a CUDA GPU (skipped elsewhere): the bf16 training path, torch.compile, the streamed and the
resident batch paths, and embedding agree with the CPU; faiss-gpu's neighbours equal the CPU's."""

import numpy as np
import pytest
import torch

from conftest import make_images
from vae_tools.config import TrainConfig
from vae_tools.data import ImageDataset
from vae_tools.data.arrays import ArrayReader
from vae_tools.embedding import embed, latent_matrix
from vae_tools.training import train
from vae_tools.training import loop

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture(scope="module")
def bars():
    images, labels = make_images(n=2000, size=16, seed=5)
    return ImageDataset(ArrayReader(images, "bars"), np.arange(len(images)).astype(str), labels)


def config(**changes):
    return TrainConfig(**{"epochs": 6, "batch_size": 64, "latent_dim": 4, "hidden_dim": 64, "widths": [16, 32],
                          "seed": 0, **changes})


def test_bf16_training_on_the_gpu_reaches_the_cpu_loss(bars):
    gpu = train(bars, config(device="cuda", amp=True), progress=False)
    cpu = train(bars, config(device="cpu"), progress=False)
    assert next(gpu.model.parameters()).is_cuda
    losses = [row["val_loss"] for row in gpu.history]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
    assert gpu.history[-1]["val_loss"] == pytest.approx(cpu.history[-1]["val_loss"], rel=0.05)


def test_streamed_batches_train_like_resident_ones(bars, monkeypatch):
    resident = train(bars, config(device="cuda", amp=False), progress=False)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (0, 0))  # nothing fits: stream
    streamed = train(bars, config(device="cuda", amp=False), progress=False)
    assert streamed.history[-1]["val_loss"] == pytest.approx(resident.history[-1]["val_loss"], rel=0.02)


def test_compiled_training_runs_and_learns(bars):
    result = train(bars, config(device="cuda", compile=True), progress=False)
    losses = [row["val_loss"] for row in result.history]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]


def test_gpu_embedding_matches_the_cpu(bars):
    model = train(bars, config(device="cpu", epochs=2), progress=False).model
    on_cpu = latent_matrix(embed(model, bars, device="cpu"))
    on_gpu = latent_matrix(embed(model, bars, batch_size=4096, device="cuda"))
    assert np.abs(on_gpu - on_cpu).max() <= 1e-3 * max(1.0, np.abs(on_cpu).max())


def test_fetcher_keeps_a_set_that_fits_on_the_gpu(bars):
    bars.load_into_memory(1 << 30)
    order = np.arange(len(bars))[::-1].copy()
    fetch = loop.batch_fetcher(bars, torch.device("cuda"), torch.channels_last)(order)
    batch = fetch(slice(2, 5))
    assert batch.is_cuda and torch.allclose(batch.cpu(), bars.batch(order[2:5]))


def test_integer_pixels_become_the_same_floats_on_the_gpu():
    images = np.random.default_rng(0).integers(0, 256, (50, 9, 7), dtype=np.uint8)
    data = ImageDataset(ArrayReader(images, "noise"), np.arange(50).astype(str))
    positions = np.array([7, 3, 49, 0])
    assert torch.equal(data.batch_on(positions, torch.device("cuda")).cpu(), data.batch(positions))


def test_faiss_gpu_neighbours_equal_the_exact_cpu_ones(monkeypatch):
    import faiss

    from vae_tools.latent import neighbors

    if not hasattr(faiss, "get_num_gpus") or faiss.get_num_gpus() == 0:
        pytest.skip("this faiss build has no GPU support")
    x = np.random.default_rng(0).normal(size=(5000, 16)).astype(np.float32)
    on_gpu, gpu_distances = neighbors.nearest_neighbors(x, 10)
    monkeypatch.setattr(faiss, "get_num_gpus", lambda: 0)
    on_cpu, cpu_distances = neighbors.nearest_neighbors(x, 10, method="exact")
    assert (on_gpu == on_cpu).mean() > 0.999
    assert np.allclose(gpu_distances, cpu_distances, atol=1e-3)
