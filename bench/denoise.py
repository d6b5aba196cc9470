"""Denoising benchmark on MNIST: noisy input, PCA-50 projection, a plain convolutional denoising
autoencoder and vaetools' denoising VAE, at gaussian sigma 0.5, salt-and-pepper 20% and 50% pixel
masking.

Both networks have the same layers (vaetools' conv encoder/decoder for 28x28, the denoising preset's
latent size) and the same budget: the same epochs over the 60,000 training images, batch size,
optimizer and learning-rate schedule. The plain autoencoder has a deterministic bottleneck and no KL
term. All are scored by PSNR and SSIM (scikit-image) on the 10,000 test images, corrupted with a
fixed seed.

    python bench/denoise.py [--epochs 5] [--data ../shared/data/mnist.npz]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.decomposition import PCA

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vae_tools.config import load_config  # noqa: E402
from vae_tools.device_settings import BASE_LR, CPU_BATCH_SIZE  # noqa: E402
from vae_tools.data import ImageDataset  # noqa: E402
from vae_tools.data.arrays import ArrayReader  # noqa: E402
from vae_tools.denoising import denoise  # noqa: E402
from vae_tools.image_quality import psnr_ssim  # noqa: E402
from vae_tools.models import get_model  # noqa: E402
from vae_tools.models.noise import corrupt, parse_noise  # noqa: E402
from vae_tools.training import train  # noqa: E402
from vae_tools.training.schedule import learning_rate  # noqa: E402

NOISES = ("gaussian:0.5", "salt-pepper:0.2", "mask:0.5")


def train_plain_dae(clean: torch.Tensor, noise: str, config, seed: int = 0) -> torch.nn.Module:
    """The same conv layers with z = mu (no sampling, no KL): a plain denoising autoencoder."""
    torch.manual_seed(seed)
    model = get_model("conv", image_shape=(1, 28, 28), latent_dim=config.latent_dim, widths=config.widths,
                      hidden_dim=config.hidden_dim, likelihood=config.likelihood, activation=config.activation)
    model = model.to(memory_format=torch.channels_last)
    # vaetools' CPU settings where the preset leaves them to the device (vae_tools/device_settings.py)
    batch_size, peak_lr = config.batch_size or CPU_BATCH_SIZE, config.lr or BASE_LR
    optimizer = torch.optim.AdamW(model.parameters(), lr=peak_lr, weight_decay=config.weight_decay)
    noises = parse_noise(noise)
    generator = torch.Generator().manual_seed(seed)
    # Same split size as vaetools' trainer (it holds out val_fraction for early stopping).
    n_train = int(round(len(clean) * (1 - config.val_fraction)))
    steps = n_train // batch_size
    total = steps * config.epochs
    for epoch in range(config.epochs):
        order = torch.randperm(n_train, generator=generator)
        model.train()
        for i in range(steps):
            step = epoch * steps + i
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(step, total, peak_lr, config.lr_schedule, config.warmup_steps)
            x = clean[order[i * batch_size:(i + 1) * batch_size]].contiguous(memory_format=torch.channels_last)
            mu, _ = model.encode(corrupt(x, noises, generator))
            loss = model.reconstruction_nll(model.decode(mu), x).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return model.eval()


def quality(clean: np.ndarray, other: np.ndarray) -> dict:
    psnr, ssim = psnr_ssim(clean, other)
    return {"psnr_db": float(psnr.mean()), "ssim": float(ssim.mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist.npz"))
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--noises", nargs="+", default=list(NOISES))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "denoise.json"))
    args = parser.parse_args()

    with np.load(args.data) as raw:
        x_train, x_test = raw["x_train"], raw["x_test"]
    clean_train = torch.from_numpy(x_train[:, None].astype(np.float32) / 255.0)
    clean_test = x_test[:, None].astype(np.float32) / 255.0
    pca = PCA(50, random_state=0).fit(clean_train.reshape(len(clean_train), -1).numpy())
    train_set = ImageDataset(ArrayReader(x_train, "mnist train"), np.arange(len(x_train)).astype(str), None)

    results = {}
    for noise in args.noises:
        started = time.perf_counter()
        noisy = corrupt(torch.from_numpy(clean_test), parse_noise(noise), torch.Generator().manual_seed(123)).numpy()
        projected = np.clip(pca.inverse_transform(pca.transform(noisy.reshape(len(noisy), -1))), 0, 1)
        config = load_config("denoising", {"noise": noise, "epochs": args.epochs, "device": args.device})

        t = time.perf_counter()
        dae = train_plain_dae(clean_train, noise, config)
        dae_seconds = time.perf_counter() - t
        with torch.no_grad():
            dae_out = np.concatenate([dae.reconstruct(torch.from_numpy(noisy[i:i + 1000])).numpy()
                                      for i in range(0, len(noisy), 1000)])

        t = time.perf_counter()
        vae = train(train_set, config, progress=False).model
        vae_seconds = time.perf_counter() - t
        _, vae_out = denoise(vae, noisy, device=next(vae.parameters()).device)

        results[noise] = {
            "noisy_input": quality(clean_test, noisy),
            "pca50_projection": quality(clean_test, projected.reshape(noisy.shape).astype(np.float32)),
            "plain_conv_dae": {**quality(clean_test, dae_out), "train_seconds": round(dae_seconds, 1)},
            "vaetools": {**quality(clean_test, vae_out), "train_seconds": round(vae_seconds, 1)},
            "seconds": round(time.perf_counter() - started, 1),
        }
        r = results[noise]
        r["psnr_gain_vs_dae_db"] = r["vaetools"]["psnr_db"] - r["plain_conv_dae"]["psnr_db"]
        print(f"{noise}: " + ", ".join(f"{k} {v['psnr_db']:.2f} dB / SSIM {v['ssim']:.3f}"
                                       for k, v in r.items() if isinstance(v, dict)), flush=True)

    report = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__,
                    "device": args.device},
        "settings": {"epochs": args.epochs, "preset": "denoising", "config": config.to_dict() | {"noise": "per row"}},
        "results": results,
        "target": {"gaussian:0.5": {"psnr_db": 20.0, "at_least_plain_dae": True}},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
