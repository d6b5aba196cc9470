"""`vaetools denoise` and the noise presets: every output form, metrics, reference errors, RGB."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import invoke, make_images, tiny_training, write_idx
from vae_tools.denoising import denoise
from vae_tools.errors import ConfigError
from vae_tools.image_quality import psnr_ssim
from vae_tools.models.noise import corrupt, parse_noise
from vae_tools.run_folder import load_run

FAST = tiny_training(2)


run_cli = invoke


@pytest.mark.parametrize("spec, check", [
    ("gaussian:0.5", lambda x, y: 0.2 < (y - x).abs().mean() < 0.5),
    ("salt-pepper:0.2", lambda x, y: abs(((y == 0) | (y == 1)).float().mean().item() - 0.2) < 0.03),
    ("mask:0.5", lambda x, y: abs((y == 0).float().mean().item() - 0.5) < 0.03),
    ("block:0.3", lambda x, y: abs((y == 0).float().mean().item() - 0.3) < 0.05),
])
def test_each_noise_type_corrupts_as_specified(spec, check):
    x = torch.full((200, 1, 28, 28), 0.5)
    y = corrupt(x, parse_noise(spec), torch.Generator().manual_seed(0))
    assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1
    assert check(x, y)


def test_block_noise_drops_whole_patches_and_a_mix_uses_every_kind():
    x = torch.ones(64, 1, 28, 28)
    y = corrupt(x, parse_noise("block:0.5"), torch.Generator().manual_seed(1))
    patch = y[0, 0, :4, :4]
    assert patch.min() == patch.max()  # 4x4 cells (28 // 7) are kept or dropped as one
    mixed = corrupt(torch.full((400, 1, 8, 8), 0.5), parse_noise("gaussian:0.3,mask:0.9"), torch.Generator().manual_seed(2))
    zero_share = (mixed == 0).float().mean(dim=(1, 2, 3))
    assert (zero_share > 0.7).sum() > 100 and (zero_share < 0.3).sum() > 100
    with pytest.raises(ConfigError, match="unknown noise 'blur'"):
        parse_noise("blur:2")


def test_psnr_and_ssim_numbers():
    clean = np.zeros((2, 1, 16, 16), np.float32)
    noisy = clean.copy()
    noisy[0] += 0.1  # MSE 0.01 -> 20 dB
    psnr, ssim = psnr_ssim(clean, noisy)
    assert psnr[0] == pytest.approx(20.0, abs=1e-4)
    assert psnr[1] == 100.0 and ssim[1] == pytest.approx(1.0)


@pytest.fixture(scope="module")
def grey_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("denoise")
    images, labels = make_images(n=64, size=12, seed=3)
    np.savez(root / "bars.npz", x=images, y=labels)
    run_cli("train", "--data", root / "bars.npz", "--out", root / "run", "--model", "denoising",
            "--noise", "gaussian:0.3,block:0.2", *FAST)
    return root, images, labels


def test_denoise_npz_with_added_noise_writes_images_metrics_and_comparison(grey_run, tmp_path):
    root, images, labels = grey_run
    out = tmp_path / "out"
    result = run_cli("denoise", "--model", root / "run", "--data", root / "bars.npz", "--add-noise", "gaussian:0.4",
                     "--out", out, "--quiet")
    assert "PSNR" in result.output
    saved = np.load(out / "denoised.npz", allow_pickle=False)
    assert saved["x"].shape == images.shape and saved["x"].dtype == np.uint8
    assert (saved["y"] == labels).all() and len(saved["ids"]) == 64
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["add_noise"] == "gaussian:0.4"
    assert 5 < metrics["psnr_db"]["before"] < 15  # sigma 0.4, clipped
    assert metrics["psnr_db"]["gain"] == pytest.approx(metrics["psnr_db"]["after"] - metrics["psnr_db"]["before"])
    per_image = np.genfromtxt(out / "quality_per_image.csv", delimiter=",", names=True)
    assert len(per_image) == 64
    assert per_image["psnr_before"].mean() == pytest.approx(metrics["psnr_db"]["before"], abs=1e-3)
    assert Image.open(out / "comparison.png").size[1] > 200


def test_npy_float_input_gives_npy_float_output_without_metrics(grey_run, tmp_path):
    root, images, _ = grey_run
    np.save(tmp_path / "noisy.npy", images.astype(np.float32) / 255)
    run_cli("denoise", "--model", root / "run", "--data", tmp_path / "noisy.npy", "--out", tmp_path / "out", "--quiet")
    saved = np.load(tmp_path / "out" / "denoised.npy")
    assert saved.shape == (64, 12, 12) and saved.dtype == np.float32
    assert 0 <= saved.min() and saved.max() <= 1
    assert not (tmp_path / "out" / "metrics.json").exists()
    assert (tmp_path / "out" / "comparison.png").exists()


def test_idx_input_gives_npz_and_reference_adds_metrics(grey_run, tmp_path):
    root, images, labels = grey_run
    noisy = np.clip(images + np.random.default_rng(0).normal(0, 60, images.shape), 0, 255).astype(np.uint8)
    write_idx(tmp_path / "train-labels-idx1-ubyte", labels.astype(np.uint8))
    write_idx(tmp_path / "train-images-idx3-ubyte", noisy)
    np.savez(tmp_path / "clean.npz", x=images)
    run_cli("denoise", "--model", root / "run", "--data", tmp_path / "train-images-idx3-ubyte",
            "--reference", tmp_path / "clean.npz", "--out", tmp_path / "out", "--quiet")
    assert np.load(tmp_path / "out" / "denoised.npz")["x"].shape == (64, 12, 12)
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    expected_before = psnr_ssim(images[:, None] / 255.0, noisy[:, None] / 255.0)[0].mean()
    assert metrics["psnr_db"]["before"] == pytest.approx(expected_before, abs=0.01)


def test_folder_keeps_file_names_and_formats(grey_run, tmp_path):
    root, images, _ = grey_run
    for i, image in enumerate(images[:6]):
        (tmp_path / "scans" / "a").mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(tmp_path / "scans" / "a" / f"s{i}.{'png' if i % 2 else 'jpg'}")
    run_cli("denoise", "--model", root / "run", "--data", tmp_path / "scans", "--out", tmp_path / "out", "--quiet")
    written = sorted(p.relative_to(tmp_path / "out" / "images").as_posix() for p in (tmp_path / "out" / "images").rglob("*.*"))
    assert written == sorted(p.relative_to(tmp_path / "scans").as_posix() for p in (tmp_path / "scans").rglob("*.*"))
    with Image.open(tmp_path / "out" / "images" / "a" / "s0.jpg") as jpg:
        assert jpg.format == "JPEG" and jpg.size == (12, 12) and jpg.mode == "L"
    with Image.open(tmp_path / "out" / "images" / "a" / "s1.png") as png:
        assert png.format == "PNG"


@pytest.mark.parametrize("make_ref, message", [
    (lambda images: images[:50], "holds 50 images but the data to clean holds 64"),
    (lambda images: np.zeros((64, 10, 10), np.uint8), "images are 10x10 but the data's are 12x12"),
])
def test_reference_of_wrong_count_or_size_is_a_clear_error(grey_run, tmp_path, make_ref, message):
    root, images, _ = grey_run
    np.save(tmp_path / "ref.npy", make_ref(images))
    result = run_cli("denoise", "--model", root / "run", "--data", root / "bars.npz", "--reference",
                     tmp_path / "ref.npy", "--out", tmp_path / "out", ok=False)
    assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_bad_noise_spec_and_data_of_another_size_are_clear_errors(grey_run, tmp_path):
    root, _, _ = grey_run
    result = run_cli("denoise", "--model", root / "run", "--data", root / "bars.npz", "--add-noise", "speckle:1",
                     "--out", tmp_path / "out", ok=False)
    assert result.exit_code == 1 and "unknown noise 'speckle'" in result.output


def test_rgb_folder_round_trip_and_python_api(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "rgb"
    folder.mkdir()
    for i in range(24):
        image = np.zeros((10, 10, 3), np.uint8)
        image[..., i % 3] = 200
        image = np.clip(image + rng.integers(0, 40, image.shape), 0, 255).astype(np.uint8)
        Image.fromarray(image).save(folder / f"c{i}.png")
    run_cli("train", "--data", folder, "--out", tmp_path / "run", "--model", "denoising", "--noise", "salt-pepper:0.1",
            "--likelihood", "gaussian", *FAST)
    run_cli("denoise", "--model", tmp_path / "run", "--data", folder, "--out", tmp_path / "out", "--quiet")
    with Image.open(tmp_path / "out" / "images" / "c0.png") as image:
        assert image.mode == "RGB" and image.size == (10, 10)
    model, _ = load_run(tmp_path / "run")
    batch = rng.random((5, 3, 10, 10)).astype(np.float32)
    noisy, cleaned = denoise(model, batch, add_noise="mask:0.5", seed=1)
    assert cleaned.shape == (5, 3, 10, 10) and (noisy == 0).mean() > 0.3
    again, _ = denoise(model, batch, add_noise="mask:0.5", seed=1)
    assert np.array_equal(noisy, again)
