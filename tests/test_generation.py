"""The generative side: samplers, interpolation, traversals, attribute vectors, and their commands."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import invoke, make_images, tiny_training
from vae_tools.config import load_config
from vae_tools.errors import DataError, RunFolderError
from vae_tools.generation import (GaussianMixtureSampler, attribute_vector, decode, interpolate, lerp,
                                  load_latent_summary, manifold_grid, negative_elbo, reconstruct, sample, slerp,
                                  summarise_latents, traverse)
from vae_tools.models import get_model
from vae_tools.sklearn_api import as_dataset
from vae_tools.training import train


def test_slerp_keeps_the_norm_and_both_paths_end_at_the_codes():
    a, b = torch.tensor([3.0, 0.0]), torch.tensor([0.0, 3.0])
    t = torch.linspace(0, 1, 5)
    spherical, straight = slerp(a, b, t), lerp(a, b, t)
    for path in (spherical, straight):
        assert torch.allclose(path[0], a) and torch.allclose(path[-1], b)
    assert torch.allclose(spherical.norm(dim=1), torch.full((5,), 3.0), atol=1e-5)
    assert straight[2].norm() == pytest.approx(3.0 / np.sqrt(2), rel=1e-5)  # the straight line cuts the corner
    parallel = slerp(a, 2 * a, t)  # no angle to turn through: the straight line
    assert torch.allclose(parallel, lerp(a, 2 * a, t))


@pytest.fixture(scope="module")
def strokes_model():
    """A small VAE trained for ~5 s on 600 MNIST-like stroke images (bars on a dark ground)."""
    images, labels = make_images(n=600, size=16, seed=0)
    dataset = as_dataset(images)
    config = load_config(None, dict(epochs=30, batch_size=32, latent_dim=8, hidden_dim=64, widths=[16, 32], seed=0,
                                    device="cpu"))
    model = train(dataset, config, progress=False).model
    return model, dataset, images, labels


def test_interpolation_endpoints_decode_to_the_endpoints_reconstructions(strokes_model):
    model, dataset, _, _ = strokes_model
    pair = dataset.batch(np.array([0, 1])).numpy()
    for method in ("slerp", "linear"):
        path = interpolate(model, pair[0], pair[1], steps=7, method=method)
        assert path.images.shape == (7, 1, 16, 16)
        np.testing.assert_allclose(path.images[[0, -1]], reconstruct(model, pair), atol=1e-5)
        np.testing.assert_allclose(path.t, np.linspace(0, 1, 7))
    middle = interpolate(model, pair[0], pair[1], steps=3).images[1]
    assert np.abs(middle - path.images[0]).mean() > 1e-3  # the path goes somewhere


def test_a_traverse_row_moves_only_along_its_dimension(strokes_model):
    model = strokes_model[0]
    walk = traverse(model, dims=[3, 0], steps=5, span=2.0)
    assert walk.images.shape == (2, 5, 1, 16, 16)
    np.testing.assert_allclose(walk.values, np.linspace(-2, 2, 5))
    for row, dim in enumerate([3, 0]):
        codes = walk.latents[row]
        others = [j for j in range(model.latent_dim) if j != dim]
        assert torch.equal(codes[:, others], torch.zeros(5, len(others)))
        assert torch.allclose(codes[:, dim], torch.linspace(-2, 2, 5))
        np.testing.assert_allclose(walk.images[row], decode(model, codes), atol=1e-6)
        assert np.abs(walk.images[row, 0] - walk.images[row, -1]).mean() > 1e-3
    with pytest.raises(ValueError, match="dimension 8 does not exist"):
        traverse(model, dims=[8])


def test_mixture_samples_score_a_better_elbo_than_prior_samples(strokes_model):
    model, dataset, _, _ = strokes_model
    summary = summarise_latents(model, dataset)
    assert summary.kl_per_dim.shape == (8,) and (summary.kl_per_dim > 0.05).sum() >= 4
    prior = negative_elbo(model, sample(model, 300, seed=1).images).mean()
    mixture = negative_elbo(model, sample(model, 300, sampler=summary.mixture, seed=1).images).mean()
    # Prior codes fall between the learned clusters and decode to blends the model finds unlikely.
    assert mixture < 0.9 * prior, (mixture, prior)


def test_mixture_sampler_follows_the_codes_it_was_fitted_to():
    rng = np.random.default_rng(0)
    codes = np.concatenate([rng.normal(-4, 0.3, (400, 2)), rng.normal(4, 0.3, (400, 2))])
    mixture = GaussianMixtureSampler().fit(codes)
    assert mixture.n_components_ >= 2 and set(mixture.bic_) == {1, 2, 5, 10, 20}
    drawn = mixture.sample(2000, seed=0).numpy()
    assert np.abs(drawn).min() > 2  # nothing in the empty middle, where the prior would put most codes
    assert abs((drawn[:, 0] > 0).mean() - 0.5) < 0.05
    still = mixture.sample(50, temperature=0, seed=0).numpy()
    nearest = np.abs(still[:, None, :] - mixture.means_[None]).max(-1).min(1)
    assert nearest.max() < 1e-5  # temperature 0: the component means
    assert torch.equal(mixture.sample(10, seed=5), mixture.sample(10, seed=5))
    with pytest.raises(DataError, match="NaN"):
        GaussianMixtureSampler().fit(np.full((10, 2), np.nan))


def test_attribute_vector_is_the_difference_of_the_label_means():
    latents = np.array([[0, 0], [2, 0], [10, 10], [12, 14]], dtype=np.float32)
    vector, counts = attribute_vector(latents, [1, 1, 7, 7], 1, "7")
    assert torch.allclose(vector, torch.tensor([10.0, 12.0])) and counts == {"1": 2, "7": 2}
    with pytest.raises(DataError, match="no image has the label '3'"):
        attribute_vector(latents, [1, 1, 7, 7], 3, 7)


def test_manifold_grid_needs_two_dimensions():
    two = get_model("conv", image_shape=(1, 12, 12), latent_dim=2, widths=[8], hidden_dim=16)
    grid, values = manifold_grid(two, steps=5)
    assert grid.shape == (5, 5, 1, 12, 12) and values[0] == pytest.approx(-values[-1])
    with pytest.raises(ValueError, match="2-d latent space"):
        manifold_grid(get_model("conv", image_shape=(1, 12, 12), latent_dim=3, widths=[8], hidden_dim=16))


# --- the commands ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def grey_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("grey")
    images, labels = make_images(n=60, size=12, seed=1)
    np.savez(root / "bars.npz", x=images, y=labels)
    invoke("train", "--data", root / "bars.npz", "--out", root / "run", *tiny_training(3))
    return root


@pytest.fixture(scope="module")
def rgb_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("rgb")
    images, labels = make_images(n=40, size=12, seed=2)
    colour = np.stack([images, images // 2, 255 - images], axis=-1)
    folder = root / "pictures"
    for k, (image, label) in enumerate(zip(colour, labels)):
        (folder / str(label)).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / str(label) / f"p{k:02d}.png")
    invoke("train", "--data", folder, "--out", root / "run", *tiny_training(2))
    return root, folder


def test_sample_writes_a_grid_arrays_and_pngs_and_the_seed_reproduces_it(grey_run, tmp_path):
    run = grey_run / "run"
    assert (run / "latent_summary.safetensors").exists()
    out = invoke("sample", "--model", run, "--out", tmp_path / "a", "--n", "9", "--seed", "3").output
    assert "Gaussian mixture fitted to the latent codes of" in out
    invoke("sample", "--model", run, "--out", tmp_path / "b", "--n", "9", "--seed", "3")
    invoke("sample", "--model", run, "--out", tmp_path / "c", "--n", "9", "--seed", "4")
    a, b, c = (np.load(tmp_path / k / "samples.npz") for k in "abc")
    assert a["x"].shape == (9, 12, 12) and a["x"].dtype == np.uint8 and a["z"].shape == (9, 4)
    assert np.array_equal(a["x"], b["x"]) and not np.array_equal(a["x"], c["x"])
    assert (tmp_path / "a" / "samples.png").read_bytes() == (tmp_path / "b" / "samples.png").read_bytes()
    pngs = sorted((tmp_path / "a" / "images").glob("*.png"))
    assert len(pngs) == 9 and np.array_equal(np.asarray(Image.open(pngs[4])), a["x"][4])
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["sampler"] == "gmm" and summary["mean_negative_elbo"] > 0
    cold = invoke("sample", "--model", run, "--out", tmp_path / "cold", "--n", "9", "--sampler", "prior",
                  "--temperature", "0").output
    assert "the prior N(0, I)" in cold
    zeros = np.load(tmp_path / "cold" / "samples.npz")
    assert np.all(zeros["z"] == 0) and np.all(zeros["x"] == zeros["x"][0])  # every code at the prior's mean


def test_a_run_folder_without_a_latent_summary_needs_data_or_the_prior(grey_run, tmp_path):
    import shutil

    run = tmp_path / "old"
    shutil.copytree(grey_run / "run", run)
    (run / "latent_summary.safetensors").unlink()
    result = invoke("sample", "--model", run, "--out", tmp_path / "s", ok=False)
    assert result.exit_code == 1 and "has no latent summary" in result.output and "--sampler prior" in result.output
    assert not (tmp_path / "s").exists()
    assert "fitted to the latent codes of 60 images of" in invoke(
        "sample", "--model", run, "--data", grey_run / "bars.npz", "--out", tmp_path / "s").output
    assert invoke("traverse", "--model", run, "--out", tmp_path / "t", ok=False).exit_code == 1
    invoke("traverse", "--model", run, "--data", grey_run / "bars.npz", "--out", tmp_path / "t")
    (run / "latent_summary.safetensors").write_bytes(b"not tensors")
    broken = invoke("sample", "--model", run, "--out", tmp_path / "x", ok=False)
    assert broken.exit_code == 1 and "unreadable latent summary" in broken.output
    assert load_latent_summary(grey_run / "run", 4).mixture.latent_dim == 4
    with pytest.raises(RunFolderError, match="does not match"):
        load_latent_summary(grey_run / "run", 5)


def test_reconstruct_interpolate_traverse_and_attribute_on_grey_arrays(grey_run, tmp_path):
    run, data = grey_run / "run", grey_run / "bars.npz"
    out = invoke("reconstruct", "--model", run, "--data", data, "--out", tmp_path / "r", "--images", "3,5",
                 "--images", "8").output
    assert "reconstructed 3 images" in out
    saved = np.load(tmp_path / "r" / "reconstructions.npz")
    assert list(saved["ids"]) == ["3", "5", "8"] and saved["x"].shape == saved["reconstructed"].shape == (3, 12, 12)
    table = (tmp_path / "r" / "reconstructions.csv").read_text().splitlines()
    assert table[0] == "id,label,mse,psnr_db,ssim" and len(table) == 4

    invoke("interpolate", "--model", run, "--data", data, "--out", tmp_path / "i", "--between", "0", "1",
           "--between", "2", "7", "--steps", "5")
    paths = np.load(tmp_path / "i" / "interpolations.npz")
    assert paths["slerp"].shape == paths["linear"].shape == (10, 12, 12)
    assert list(paths["id_a"]) == ["0", "2"] and list(paths["id_b"]) == ["1", "7"]
    assert {p.name for p in (tmp_path / "i").glob("pair_*.png")} == {"pair_00.png", "pair_01.png"}
    invoke("interpolate", "--model", run, "--data", data, "--out", tmp_path / "rand", "--pairs", "3")
    pairs = (tmp_path / "rand" / "pairs.csv").read_text().splitlines()[1:]
    assert len(pairs) == 3 and all(row.split(",")[4] != row.split(",")[5] for row in pairs)  # different labels

    invoke("traverse", "--model", run, "--out", tmp_path / "t", "--dims", "2,0", "--steps", "4")
    walk = np.load(tmp_path / "t" / "traverse.npz")
    assert list(walk["dim"]) == [2] * 4 + [0] * 4 and walk["x"].shape == (8, 12, 12)
    dims = (tmp_path / "t" / "dimensions.csv").read_text().splitlines()
    assert dims[0] == "dim,kl,active,rank" and len(dims) == 5

    out = invoke("attribute", "--model", run, "--data", data, "--out", tmp_path / "a", "--from", "0", "--to", "1",
                 "--steps", "3").output
    assert "vector from the mean of 30 '0' images to 30 '1' images" in out
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert len(summary["ids"]) == 4 and summary["strengths"] == [0.0, 0.5, 1.0] and len(summary["vector"]) == 4


def test_every_command_on_a_folder_of_colour_images(rgb_run, tmp_path):
    root, folder = rgb_run
    run = root / "run"
    invoke("sample", "--model", run, "--out", tmp_path / "s", "--n", "4")
    assert np.load(tmp_path / "s" / "samples.npz")["x"].shape == (4, 12, 12, 3)
    invoke("reconstruct", "--model", run, "--data", folder, "--out", tmp_path / "r", "--images", "1/p01.png")
    assert np.load(tmp_path / "r" / "reconstructions.npz")["reconstructed"].shape == (1, 12, 12, 3)
    invoke("interpolate", "--model", run, "--data", folder, "--out", tmp_path / "i", "--between", "0/p00.png",
           "1/p01.png", "--steps", "3")
    assert np.load(tmp_path / "i" / "interpolations.npz")["slerp"].shape == (3, 12, 12, 3)
    invoke("traverse", "--model", run, "--out", tmp_path / "t")
    invoke("attribute", "--model", run, "--data", folder, "--out", tmp_path / "a", "--from", "0", "--to", "1",
           "--images", "0/p00.png")
    assert Image.open(tmp_path / "a" / "attribute.png").mode in ("RGB", "RGBA")


def write_source(kind, folder, images, labels):
    """The same images as each kind of data source; returns the --data value."""
    import pandas as pd

    from conftest import write_idx

    folder.mkdir(parents=True, exist_ok=True)
    if kind == "npy":
        np.save(folder / "x.npy", images)
        return folder / "x.npy"
    if kind == "idx":
        write_idx(folder / "train-labels-idx1-ubyte", labels.astype(np.uint8))
        return write_idx(folder / "train-images-idx3-ubyte", images)
    frame = pd.DataFrame(images.reshape(len(images), -1), columns=[f"pixel{i}" for i in range(images[0].size)])
    frame.insert(0, "label", labels)
    frame.to_csv(folder / "pixels.csv", index=False)
    return folder / "pixels.csv"


@pytest.mark.parametrize("kind", ["npy", "idx", "csv"])
def test_reconstruct_interpolate_and_attribute_read_every_kind_of_source(grey_run, tmp_path, kind):
    images, labels = make_images(n=60, size=12, seed=1)
    data = write_source(kind, tmp_path / "source", images, labels)
    run = grey_run / "run"
    invoke("reconstruct", "--model", run, "--data", data, "--out", tmp_path / "r", "--images", "4")
    saved = np.load(tmp_path / "r" / "reconstructions.npz")
    assert np.array_equal(saved["x"][0], images[4])  # the image itself, read from this kind of source
    invoke("interpolate", "--model", run, "--data", data, "--out", tmp_path / "i", "--pairs", "1", "--steps", "3")
    if kind != "npy":  # an .npy holds no labels
        invoke("attribute", "--model", run, "--data", data, "--out", tmp_path / "a", "--from", "1", "--to", "0",
               "--n", "2")
        assert len(json.loads((tmp_path / "a" / "summary.json").read_text())["ids"]) == 2


@pytest.mark.parametrize("args, message", [
    (["interpolate", "--between", "0", "nope"], "no image has the id 'nope'"),
    (["reconstruct", "--images", "999"], "no image has the id '999'"),
    (["attribute", "--from", "0", "--to", "9"], "no image has the label '9'"),
    (["attribute", "--from", "0", "--to", "1", "--images", "x"], "no image has the id 'x'"),
    (["traverse", "--dims", "7"], "dimension 7 does not exist"),
    (["traverse", "--dims", "a"], "whole numbers"),
])
def test_unknown_ids_labels_and_dimensions_are_one_line_errors_and_write_nothing(grey_run, tmp_path, args, message):
    data = [] if args[0] == "traverse" else ["--data", grey_run / "bars.npz"]
    result = invoke(args[0], "--model", grey_run / "run", *data, "--out", tmp_path / "out", *args[1:], ok=False)
    assert result.exit_code != 0 and message in result.output, result.output
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()


def test_not_a_run_folder_and_data_without_labels(grey_run, tmp_path):
    result = invoke("sample", "--model", tmp_path, "--out", tmp_path / "s", ok=False)
    assert result.exit_code == 1 and "not a vaetools run folder" in result.output
    images, _ = make_images(n=20, size=12)
    np.save(tmp_path / "plain.npy", images)
    result = invoke("attribute", "--model", grey_run / "run", "--data", tmp_path / "plain.npy", "--out",
                    tmp_path / "a", "--from", "0", "--to", "1", ok=False)
    assert result.exit_code == 1 and "has no labels" in result.output


def test_generative_steps_in_a_chain_reach_the_index_page(grey_run, tmp_path):
    run = tmp_path / "chain"
    invoke("chain", "--data", grey_run / "bars.npz", "--out", run, "train", *tiny_training(2), "sample", "--n", "16",
           "interpolate", "--pairs", "2", "traverse", "reconstruct", "--n", "4", "--quiet")
    for name in ("samples/samples.png", "interpolations/interpolations.png", "traverse/traverse.png",
                 "reconstructions/reconstructions.png"):
        assert (run / name).exists()
    page = (run / "index.html").read_text()
    assert page.count("data:image/png;base64,") >= 4 and "New images drawn by the model" in page
    assert 'href="samples/images"' in page and "sample_00000.png" not in page


def test_traverse_of_a_two_dimensional_latent_space_draws_the_manifold_grid(grey_run, tmp_path):
    options = tiny_training(2)
    options[options.index("--latent-dim") + 1] = "2"
    invoke("train", "--data", grey_run / "bars.npz", "--out", tmp_path / "run2", *options)
    invoke("traverse", "--model", tmp_path / "run2", "--out", tmp_path / "t", "--steps", "5")
    summary = json.loads((tmp_path / "t" / "summary.json").read_text())
    assert "manifold.png" in summary["files"] and summary["latent_dim"] == 2
    grid = Image.open(tmp_path / "t" / "manifold.png")
    assert grid.size[0] == grid.size[1] and grid.size[0] >= 15 * 12  # 15 x 15 decoded images
