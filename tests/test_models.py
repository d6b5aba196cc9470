import math

import pytest
import torch
import torch.nn.functional as F

from vae_tools.errors import ConfigError
from vae_tools.models import corrupt, get_model, list_models, parse_noise
from vae_tools.models.losses import bernoulli_nll, gaussian_nll, kl_to_standard_normal


def test_registry_lists_and_builds_models_by_name():
    assert {"conv", "denoising"} <= set(list_models())
    assert type(get_model("denoising", image_shape=(1, 8, 8))).__name__ == "DenoisingVAE"
    with pytest.raises(ConfigError, match="unknown model 'transformer'"):
        get_model("transformer")


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32), (3, 30, 45), (1, 13, 17)])
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_any_image_size_round_trips_to_its_own_shape(shape, likelihood):
    model = get_model("conv", image_shape=shape, latent_dim=5, likelihood=likelihood)
    x = torch.rand(3, *shape)
    out = model(x)
    assert out.decoded.shape == x.shape and out.mu.shape == (3, 5) and out.logvar.shape == (3, 5)
    recon, kl = model.loss_terms(x, x)
    assert recon.shape == (3,) and kl.shape == (3,) and torch.isfinite(recon).all()
    (recon + kl).mean().backward()
    assert all(p.grad is not None for p in model.encoder.parameters())
    image = model.reconstruct(x)
    assert image.shape == x.shape and 0 <= image.min() and image.max() <= 1


def test_kl_is_zero_at_the_prior_and_matches_the_closed_form():
    assert torch.allclose(kl_to_standard_normal(torch.zeros(2, 4), torch.zeros(2, 4)), torch.zeros(2))
    mu, logvar = torch.tensor([[1.0, -2.0]]), torch.tensor([[0.5, -1.0]])
    expected = sum(0.5 * (m**2 + math.exp(lv) - 1 - lv) for m, lv in [(1.0, 0.5), (-2.0, -1.0)])
    assert kl_to_standard_normal(mu, logvar).item() == pytest.approx(expected)


def test_reconstruction_likelihoods_match_their_formulas():
    logits, target = torch.randn(2, 1, 3, 3), torch.rand(2, 1, 3, 3)
    expected = F.binary_cross_entropy(torch.sigmoid(logits), target, reduction="none").flatten(1).sum(1)
    assert torch.allclose(bernoulli_nll(logits, target), expected, atol=1e-4)
    log_sigma = torch.tensor(-1.0)
    gauss = gaussian_nll(torch.full((1, 1, 2, 2), 0.5), log_sigma, torch.full((1, 1, 2, 2), 0.5))
    assert gauss.item() == pytest.approx(4 * (-1.0 + 0.5 * math.log(2 * math.pi)), rel=1e-5)


def test_invalid_model_options():
    with pytest.raises(ConfigError, match="likelihood"):
        get_model("conv", likelihood="poisson")
    with pytest.raises(ConfigError, match="activation"):
        get_model("conv", activation="tanh")
    with pytest.raises(ConfigError, match="too small"):
        get_model("conv", image_shape=(1, 4, 4), widths=[8, 16, 32, 64])


def test_gaussian_noise_is_clipped_and_proportional_to_sigma():
    x = torch.full((64, 1, 16, 16), 0.5)
    generator = torch.Generator().manual_seed(0)
    noisy = corrupt(x, parse_noise("gaussian:0.1"), generator)
    assert 0 <= noisy.min() and noisy.max() <= 1
    assert (noisy - x).std().item() == pytest.approx(0.1, rel=0.05)


def test_salt_pepper_and_mask_touch_the_requested_fraction():
    x = torch.full((64, 3, 16, 16), 0.5)
    generator = torch.Generator().manual_seed(0)
    salted = corrupt(x, parse_noise("salt-pepper:0.2"), generator)
    changed = (salted != 0.5).float().mean().item()
    assert changed == pytest.approx(0.2, abs=0.02)
    assert set(salted.unique().tolist()) == {0.0, 0.5, 1.0}
    assert torch.equal(salted[:, 0], salted[:, 2])  # one defect per pixel location, across channels
    masked = corrupt(x, parse_noise("mask:0.5"), generator)
    assert (masked == 0).float().mean().item() == pytest.approx(0.5, abs=0.03)


def test_noise_mix_applies_each_kind_to_some_images():
    x = torch.full((200, 1, 8, 8), 0.5)
    out = corrupt(x, parse_noise("mask:1.0,salt-pepper:1.0"), torch.Generator().manual_seed(0))
    all_zero = (out == 0).flatten(1).all(1)
    assert 50 < all_zero.sum().item() < 150


@pytest.mark.parametrize("spec, message", [
    ("blur:0.3", "unknown noise 'blur'"), ("gaussian", "needs a number"), ("mask:1.5", "probability"),
    ("gaussian:-1", "sigma"), ("", "empty"),
])
def test_bad_noise_specs(spec, message):
    with pytest.raises(ConfigError, match=message):
        parse_noise(spec)


def test_denoising_model_corrupts_only_its_training_input():
    model = get_model("denoising", image_shape=(1, 8, 8), noise="mask:0.5")
    x = torch.ones(4, 1, 8, 8)
    assert (model.training_input(x) == 0).any()
    assert model.config()["noise"] == "mask:0.5"
    assert torch.equal(get_model("conv", image_shape=(1, 8, 8)).training_input(x), x)


def test_a_new_model_is_one_class_and_its_registration(tmp_path):
    """What docs/architecture.md promises: subclass BaseVAE, register it, and every step can use it."""
    import numpy as np
    from torch import nn

    from conftest import make_images
    from vae_tools.config import load_config
    from vae_tools.embedding import embed
    from vae_tools.generation import sample
    from vae_tools.models import BaseVAE, register_model
    from vae_tools.models.registry import _MODELS
    from vae_tools.run_folder import load_run
    from vae_tools.sklearn_api import as_dataset
    from vae_tools.training import train

    class TinyMLPVAE(BaseVAE):
        def __init__(self, image_shape=(1, 12, 12), latent_dim=2, hidden_dim=32):
            super().__init__()
            self.image_shape, self.latent_dim, self.hidden_dim = tuple(image_shape), latent_dim, hidden_dim
            self.likelihood = "bernoulli"
            pixels = int(np.prod(image_shape))
            self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(pixels, hidden_dim), nn.ReLU(),
                                         nn.Linear(hidden_dim, 2 * latent_dim))
            self.decoder = nn.Sequential(nn.Linear(latent_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, pixels))

        def encode(self, x):
            return self.encoder(x).chunk(2, dim=1)

        def decode(self, z):
            return self.decoder(z).view(-1, *self.image_shape)

        def reconstruction_nll(self, decoded, target):
            return bernoulli_nll(decoded, target)

        def mean_image(self, decoded):
            return F.sigmoid(decoded)

        def config(self):
            return {"image_shape": list(self.image_shape), "latent_dim": self.latent_dim, "hidden_dim": self.hidden_dim}

    register_model("test-tiny-mlp")(TinyMLPVAE)
    try:
        images, _ = make_images(n=64, size=12)
        dataset = as_dataset(images)
        config = load_config(None, {"model": "test-tiny-mlp", "latent_dim": 3, "hidden_dim": 16, "epochs": 2,
                                    "batch_size": 16, "device": "cpu"})
        result = train(dataset, config, out_dir=tmp_path / "run", progress=False)
        model, stored = load_run(tmp_path / "run")
        assert isinstance(model, TinyMLPVAE) and stored["model"]["params"]["hidden_dim"] == 16
        for name, value in result.model.state_dict().items():
            assert torch.equal(value.cpu(), model.state_dict()[name])
        assert embed(model, dataset)[["mu_0", "mu_1", "mu_2"]].shape == (64, 3)
        assert sample(model, 5).images.shape == (5, 1, 12, 12)
    finally:
        _MODELS.pop("test-tiny-mlp", None)
    with pytest.raises(TypeError, match="not a subclass"):
        register_model("test-not-a-vae")(nn.Linear)
