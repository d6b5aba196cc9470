"""The photo model's rotation term and the `rotation` anomaly score: the head learns which way up
photographs of one kind are, `auto` uses it only where it does, and folders saved before the term load."""

import json

import numpy as np
import pytest
import torch

from conftest import invoke, make_images, tiny_training
from test_photo_model import dataset
from vae_tools.anomaly import VAEAnomalyDetector
from vae_tools.anomaly.scores import compute_scores
from vae_tools.config import TrainConfig
from vae_tools.errors import DataError
from vae_tools.models.photo_vae import PhotoVAE
from vae_tools.training import train

SMALL = dict(batch_size=16, hidden_dim=32, widths=[8, 16], latent_dim=8, seed=0)


def scenes(n=64, size=16, seed=0):
    """Photographs with an up and a down: a bright sky over darker ground, a warm object on the ground."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    images = np.empty((n, size, size, 3), dtype=np.uint8)
    for i in range(n):
        horizon = rng.uniform(0.35, 0.55)
        sky = np.array([0.55, 0.7, 0.9]) * (1.1 - 0.4 * yy[..., None])
        ground = np.array([0.35, 0.45, 0.2]) * (0.6 + 0.3 * yy[..., None])
        image = np.where((yy < horizon)[..., None], sky, ground)
        blob = np.exp(-((xx - rng.uniform(0.2, 0.8)) ** 2 + (yy - rng.uniform(0.65, 0.85)) ** 2) / 0.01)
        image = image + blob[..., None] * (np.array([0.9, 0.4, 0.1]) - image)
        images[i] = np.clip((image + rng.normal(0, 0.03, image.shape)) * 255, 0, 255).astype(np.uint8)
    return images


def textures(n=64, size=16, seed=0):
    """Smooth colour noise: what it looks like does not depend on which way up it is."""
    rng = np.random.default_rng(seed)
    noise = torch.from_numpy(rng.uniform(0, 1, (n, 3, size, size))).float()
    smooth = torch.nn.functional.avg_pool2d(noise, 5, stride=1, padding=2, count_include_pad=False)
    smooth = (smooth - smooth.mean()) * 3 + 0.5
    return (smooth.clamp(0.05, 0.95).permute(0, 2, 3, 1).numpy() * 255).astype(np.uint8)


def as_tensor(images):
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255


@pytest.fixture(scope="module")
def scene_model():
    torch.manual_seed(0)
    return train(dataset(scenes(), None), TrainConfig(epochs=25, **SMALL), progress=False).model.eval()


def test_turns_of_an_oblong_image_only_turn_it_upside_down():
    assert PhotoVAE(image_shape=(3, 16, 16)).turns == (0, 1, 2, 3)
    model = PhotoVAE(image_shape=(3, 16, 24), widths=[8, 16], hidden_dim=32)
    assert model.turns == (0, 2)
    images, turn = model.turned(torch.rand(5, 3, 16, 24))
    assert images.shape == (10, 3, 16, 24) and turn.tolist() == [0] * 5 + [1] * 5
    assert model.rotation_nll(torch.rand(3, 3, 16, 24)).shape == (3,)


def test_the_rotation_head_learns_which_way_up_the_photos_are_and_is_unsure_of_other_images(scene_model):
    assert scene_model.registry_name == "photo" and scene_model.rotation_head is not None
    with torch.no_grad():
        held_out = scene_model.rotation_nll(as_tensor(scenes(n=32, seed=5)))
        others = scene_model.rotation_nll(as_tensor(textures(n=32, seed=5)))
    # Chance is log 4 = 1.39 nats.
    assert float(held_out.mean()) < 0.5 * np.log(4), held_out.mean()
    assert float(others.mean()) > 1.5 * float(held_out.mean()), (others.mean(), held_out.mean())
    detector = VAEAnomalyDetector(vae=scene_model, samples=2).fit(scenes(n=32, seed=7))
    assert detector.score_ == "rotation+knn" and "counts beside" in detector.choices_["score"]["why"]
    scores = detector.decision_function(np.concatenate([scenes(n=16, seed=8), textures(n=16, seed=8)]))
    assert scores[16:].min() > np.median(scores[:16])


def test_auto_leaves_the_rotation_head_out_where_images_look_alike_turned():
    torch.manual_seed(0)
    model = train(dataset(textures(), None), TrainConfig(epochs=25, **SMALL), progress=False).model.eval()
    assert model.registry_name == "photo"
    detector = VAEAnomalyDetector(vae=model, samples=2).fit(textures(n=32, seed=3))
    assert detector.score_ == "knn", detector.choices_
    assert "look alike turned" in detector.choices_["score"]["why"]
    assert "rotation" in detector.score_parts_  # computed to decide, and kept in the table


def test_the_rotation_score_is_refused_for_a_model_without_the_head(tmp_path):
    from vae_tools.models.conv_vae import ConvVAE

    images, _ = make_images(n=16, size=12)  # strokes: the conv model
    with pytest.raises(DataError, match="rotation score needs a photo model"):
        compute_scores(ConvVAE(image_shape=(1, 12, 12), latent_dim=2), dataset(images, None), ["rotation"])
    np.savez(tmp_path / "x.npz", x=images)
    invoke("train", "--data", tmp_path / "x.npz", "--out", tmp_path / "run", *tiny_training(1))
    result = invoke("anomalies", "--model", tmp_path / "run", "--data", tmp_path / "x.npz", "--score", "rotation",
                    "--out", tmp_path / "a", ok=False)
    assert result.exit_code != 0
    assert result.output.count("Error:") == 1 and "rotation score needs a photo model" in result.output
    assert not (tmp_path / "a").exists()


def test_a_photo_folder_saved_before_the_rotation_term_loads_and_scores_without_it(tmp_path):
    from safetensors.torch import load_file, save_file

    from vae_tools import load_model

    images = scenes(n=32)
    train(dataset(images, None), TrainConfig(epochs=1, **SMALL), out_dir=tmp_path / "run", progress=False)
    config_path = tmp_path / "run" / "config.json"
    config = json.loads(config_path.read_text())
    del config["model"]["params"]["rotation"]  # as the folders written before the term were
    config_path.write_text(json.dumps(config))
    weights = tmp_path / "run" / "model.safetensors"
    save_file({k: v for k, v in load_file(str(weights)).items() if not k.startswith("rotation_head.")}, str(weights))
    model = load_model(tmp_path / "run").module_
    assert model.rotation_head is None and model.rotation == 0.0
    detector = VAEAnomalyDetector(vae=model, samples=2).fit(images)
    assert detector.score_ == "adjusted" and "no rotation head" in detector.choices_["score"]["why"]


def test_rotation_and_knn_add_in_the_reference_images_robust_units():
    import pandas as pd

    from vae_tools.anomaly.score_registry import get_score

    rng = np.random.default_rng(0)
    reference = rng.normal(size=(200, 3))
    turns = pd.DataFrame({"rotation": rng.uniform(0.2, 0.4, 200)})
    score = get_score("rotation+knn")
    state = score.fit(turns, reference, 0)
    new = np.array([[0, 0, 0], [0, 0, 0], [6, 6, 6]], dtype=float)
    values = score.compute(pd.DataFrame({"rotation": [0.3, 1.4, 0.3]}), new, state)
    assert values[0] < 1 and values[1] > 5 and values[2] > 5  # unsure of its turns, or far from every code
    knn = get_score("knn").compute(None, new, state["index"])
    (r_median, r_range), (k_median, k_range) = state["rotation"], state["knn"]
    assert values == pytest.approx((np.array([0.3, 1.4, 0.3]) - r_median) / r_range + (knn - k_median) / k_range)
