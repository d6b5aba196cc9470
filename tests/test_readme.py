"""The README's Python example runs as written, on small stand-ins for the user's data."""

import re
from pathlib import Path

import numpy as np

from conftest import make_images

README = Path(__file__).resolve().parents[1] / "README.md"


def python_examples() -> list:
    text = README.read_text()
    section = text[text.index("### Python API"):text.index("## Layout")]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_the_readme_python_example_runs(tmp_path, monkeypatch):
    from vae_tools import VAEEmbedder
    from vae_tools.training import trainer

    # The example's estimators train until early stopping (at least 3,000 steps); a few epochs
    # show the same calls work, in seconds.
    monkeypatch.setattr(trainer, "training_length", 
                        lambda config, steps, *_: {"epochs": config.epochs or 3, "patience": 3, "why": ""})
    images, labels = make_images(n=200, size=12, seed=4)
    monkeypatch.chdir(tmp_path)
    VAEEmbedder(latent_dim=4, epochs=2, device="cpu").fit(images, out_dir=tmp_path / "runs" / "NAME")
    rng = np.random.default_rng(0)
    noisy = np.clip(images + rng.normal(0, 60, images.shape), 0, 255).astype(np.uint8)
    namespace = {"images": images, "y_partial": np.where(np.arange(200) % 10 == 0, labels, -1),
                 "normal_images": images[labels == 0], "new_images": images, "noisy_images": noisy}
    first, generative = python_examples()
    exec(compile(first, str(README), "exec"), namespace)
    assert namespace["latents"].shape == (200, 16)
    assert len(namespace["labels"]) == 200 and set(namespace["labels"]) <= {0, 1}
    assert len(namespace["clusters"]) == 200
    choice = namespace["choice"]
    assert choice.features in choice.silhouettes and len(choice.clusterer.labels_) == 200
    assert namespace["is_odd"].shape == (200,) and set(np.unique(namespace["is_odd"])) <= {0, 1}
    assert namespace["denoised"].shape == (200, 1, 12, 12)
    assert 0 <= namespace["denoised"].min() and namespace["denoised"].max() <= 1

    exec(compile(generative, str(README), "exec"), namespace)
    assert namespace["new"].images.shape == (64, 1, 12, 12) and namespace["new"].latents.shape == (64, 4)
    path = namespace["path"]
    assert path.images.shape == (10, 1, 12, 12)
    np.testing.assert_allclose(path.images[[0, -1]], namespace["emb"].reconstruct(images[:2]), atol=1e-5)
    assert namespace["walk"].images.shape == (2, 11, 1, 12, 12)
