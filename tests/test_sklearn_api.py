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
