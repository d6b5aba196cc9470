import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import Pipeline

from vae_tools import VAEEmbedder, load_model
from vae_tools.data import load_dataset
from vae_tools.errors import DataError

FAST = dict(latent_dim=4, epochs=6, batch_size=16, hidden_dim=32, widths=[8, 16])


def test_fit_returns_self_and_sets_fitted_attributes(images_and_labels):
    images, _ = images_and_labels
    embedder = VAEEmbedder(**FAST)
    assert embedder.fit(images) is embedder
    assert embedder.image_shape_ == (1, 12, 12) and embedder.n_features_out_ == 4 and embedder.history_
    latents = embedder.transform(images)
    assert latents.shape == (60, 4) and latents.dtype == np.float32
    assert list(embedder.get_feature_names_out()) == ["mu_0", "mu_1", "mu_2", "mu_3"]
    assert embedder.score_samples(images).shape == (60,)
    assert embedder.reconstruct(images[:5]).shape == (5, 1, 12, 12)


def test_latents_separate_the_classes_inside_a_pipeline(images_and_labels):
    images, labels = images_and_labels
    pipe = Pipeline([("vae", VAEEmbedder(**{**FAST, "epochs": 15})), ("clf", LogisticRegression(max_iter=500))])
    scores = cross_val_score(pipe, images.reshape(60, -1), labels, cv=3)
    assert scores.mean() >= 0.8


def test_clone_and_params_follow_scikit_learn_conventions():
    embedder = VAEEmbedder(latent_dim=7, epochs=3)
    copy = clone(embedder)
    assert copy.get_params()["latent_dim"] == 7 and not hasattr(copy, "module_")
    with pytest.raises(Exception, match="not fitted"):
        copy.transform(np.zeros((2, 8, 8), np.uint8))


def test_load_model_reads_a_run_folder_and_matches_the_saved_model(tmp_path, images_and_labels):
    images, _ = images_and_labels
    fitted = VAEEmbedder(**FAST).fit(images, out_dir=tmp_path / "run")
    loaded = load_model(tmp_path / "run")
    np.testing.assert_allclose(loaded.transform(images), fitted.transform(images), atol=1e-5)
    assert loaded.run_config_["model"]["params"]["latent_dim"] == 4


def test_transform_accepts_a_source_and_resizes_to_the_model(npz_file, images_and_labels):
    images, _ = images_and_labels
    embedder = VAEEmbedder(**FAST).fit(str(npz_file))
    bigger = np.repeat(np.repeat(images, 2, axis=1), 2, axis=2)
    assert embedder.transform(bigger).shape == (60, 4)
    assert embedder.transform(load_dataset(npz_file)).shape == (60, 4)


def test_bad_arrays_are_refused_clearly():
    with pytest.raises(DataError):
        VAEEmbedder(**FAST).fit(np.zeros((0, 8, 8)))
    with pytest.raises(DataError, match="NaN"):
        VAEEmbedder(**FAST).fit(np.full((4, 8, 8), np.nan))


def test_pixels_on_a_scale_of_their_own_are_refused_until_their_range_is_given():
    from vae_tools.sklearn_api import as_dataset

    digits_like = np.random.default_rng(0).integers(0, 17, size=(10, 8, 8)).astype(np.float64)  # 0-16
    with pytest.raises(DataError, match=r"neither \[0, 1\] nor \[0, 255\].*pixel_range=\(0, 16\)"):
        VAEEmbedder(**FAST).fit(digits_like)
    data = as_dataset(digits_like, pixel_range=(0, 16))
    np.testing.assert_allclose(data.batch(np.arange(10))[:, 0].numpy(), digits_like / 16, atol=1e-6)
    assert as_dataset(digits_like * 10).batch(np.array([0]))[0].max() <= 1  # 0-160: an 8-bit scale, /255
    assert as_dataset(digits_like.astype(np.uint8)).reader.scale == 255  # 8-bit integers stay 8-bit
    with pytest.raises(DataError, match="pixel_range must be"):
        as_dataset(digits_like, pixel_range=(0, -1))
    fitted = VAEEmbedder(**FAST, pixel_range=(0, 16)).fit(digits_like)
    assert fitted.transform(digits_like).shape == (10, FAST.get("latent_dim", 16))
