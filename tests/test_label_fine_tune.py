"""Self-training refinement: the per-image shifts and the label-guided fine-tuning of the VAE."""

import numpy as np
import torch

from conftest import make_images
from vae_tools.data import load_dataset
from vae_tools.embedding import embed, latent_matrix
from vae_tools.models import get_model
from vae_tools.models.augment import random_shift
from vae_tools.training.label_fine_tune import fine_tune_on_labels


def test_random_shift_moves_each_image_by_its_own_offset_within_the_limit():
    n, size, limit = 300, 11, 2
    images = torch.zeros(n, 1, size, size)
    images[:, 0, 5, 5] = 1.0  # one bright pixel in the middle, far from the edges
    shifted = random_shift(images, limit, torch.Generator().manual_seed(0))
    assert shifted.shape == images.shape
    where = shifted[:, 0].flatten(1).argmax(1)
    rows, cols = (where // size).numpy() - 5, (where % size).numpy() - 5
    assert np.abs(rows).max() <= limit and np.abs(cols).max() <= limit
    assert torch.allclose(shifted.sum(dim=(1, 2, 3)), torch.ones(n))  # moved, not blurred or lost
    offsets = set(zip(rows.tolist(), cols.tolist()))
    assert len(offsets) == (2 * limit + 1) ** 2  # every offset occurs: one per image, not one per batch


def test_random_shift_repeats_edge_pixels_and_keeps_channels_apart():
    images = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4)
    shifted = random_shift(images, 1, torch.Generator().manual_seed(1))
    for i in range(2):
        for c in range(3):
            values = set(shifted[i, c].flatten().tolist())
            assert values <= set(images[i, c].flatten().tolist())  # nothing from another channel or image
    assert torch.equal(random_shift(images, 0, torch.Generator()), images)


def _separation(latents: np.ndarray, labels: np.ndarray) -> float:
    """Distance between the two class means over the mean within-class spread."""
    means = [latents[labels == k].mean(0) for k in (0, 1)]
    spread = np.mean([latents[labels == k].std(0).mean() for k in (0, 1)])
    return float(np.linalg.norm(means[0] - means[1]) / spread)


def test_fine_tuning_on_labels_pulls_the_classes_apart_in_latent_space(tmp_path):
    images, labels = make_images(n=160, size=12, seed=3)
    np.savez(tmp_path / "bars.npz", x=images, y=labels)
    dataset = load_dataset(tmp_path / "bars.npz")
    torch.manual_seed(0)
    model = get_model("conv", image_shape=(1, 12, 12), latent_dim=4).eval()
    before = _separation(latent_matrix(embed(model, dataset, progress=False)), labels)
    weights = np.ones(160, dtype=np.float32)
    targets = np.where(np.arange(160) < 120, labels, -1)  # the last 40 have no target
    fine_tune_on_labels(model, dataset, targets, weights, n_classes=2, epochs=3, batch_size=32, progress=False)
    after = _separation(latent_matrix(embed(model, dataset, progress=False)), labels)
    assert not model.training
    assert after > 2 * before and after > 3
