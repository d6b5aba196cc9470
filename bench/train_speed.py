"""Training speed and quality: vaetools against a textbook conv VAE of the same size, same run.

The reference is written the way pytorch/examples' vae/main.py does it (a DataLoader over the
training tensors, Adam at 1e-3, BCE summed per batch), with the same convolutional layers as
vaetools' default model for 28x28 images. Both train for the same number of epochs on the 60,000
MNIST training images; both are scored by the same function on the 10,000 test images.

    python bench/train_speed.py [--epochs 5] [--device cpu] [--amp auto|true|false] [--data ../shared/data/mnist.npz]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vae_tools.config import TrainConfig  # noqa: E402
from vae_tools.data import load_dataset  # noqa: E402
from vae_tools.training import train  # noqa: E402
from vae_tools.training.precision import precision  # noqa: E402


class TextbookConvVAE(nn.Module):
    """Same layers as vaetools' ConvVAE for 28x28 (widths 32, 64; hidden 256), ReLU, no extras."""

    def __init__(self, latent_dim: int = 16):
        super().__init__()
        self.enc = nn.Sequential(
            nn.Conv2d(1, 32, 4, 2, 1), nn.ReLU(), nn.Conv2d(32, 64, 4, 2, 1), nn.ReLU(), nn.Flatten(),
            nn.Linear(64 * 7 * 7, 256), nn.ReLU(),
        )
        self.fc_mu = nn.Linear(256, latent_dim)
        self.fc_logvar = nn.Linear(256, latent_dim)
        self.dec_fc = nn.Sequential(nn.Linear(latent_dim, 256), nn.ReLU(), nn.Linear(256, 64 * 7 * 7), nn.ReLU())
        self.dec = nn.Sequential(nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(32, 1, 4, 2, 1))

    def encode(self, x):
        h = self.enc(x)
        return self.fc_mu(h), self.fc_logvar(h)

    def decode(self, z):
        return self.dec(self.dec_fc(z).view(-1, 64, 7, 7))  # logits

    def forward(self, x):
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.decode(z), mu, logvar


def textbook_loss(logits, x, mu, logvar):
    bce = F.binary_cross_entropy_with_logits(logits, x, reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce + kld


def train_textbook(x_train: torch.Tensor, epochs: int, device: torch.device, seed: int = 0,
                   model_class=TextbookConvVAE):
    torch.manual_seed(seed)
    model = model_class().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(TensorDataset(x_train), batch_size=128, shuffle=True)
    times = []
    for _ in range(epochs):
        started = time.perf_counter()
        model.train()
        for (x,) in loader:
            x = x.to(device)
            optimizer.zero_grad()
            logits, mu, logvar = model(x)
            loss = textbook_loss(logits, x, mu, logvar)
            loss.backward()
            optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    return model.eval(), times


@torch.no_grad()
def test_neg_elbo(encode, decode, x_test: torch.Tensor, device: torch.device, samples: int = 5) -> float:
    """Mean negative ELBO in nats per image (Bernoulli pixels), averaged over ``samples`` draws of z."""
    generator = torch.Generator(device="cpu").manual_seed(123)
    total = 0.0
    for start in range(0, len(x_test), 1000):
        x = x_test[start : start + 1000].to(device)
        mu, logvar = encode(x)
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1)
        recon = torch.zeros(len(x), device=device)
        for _ in range(samples):
            eps = torch.randn(mu.shape, generator=generator).to(device)
            logits = decode(mu + eps * torch.exp(0.5 * logvar))
            recon += F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)
        total += (recon / samples + kl).sum().item()
    return total / len(x_test)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/data/mnist.npz"))
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--amp", choices=("auto", "true", "false"), default="auto",
                        help="vaetools' precision: auto (the default: bf16 where the CPU has it natively), or "
                             "amp set (the textbook loop stays fp32)")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results/train_speed.json"))
    args = parser.parse_args()
    device = torch.device(args.device)

    train_set = load_dataset(args.data, split="train")
    test_set = load_dataset(args.data, split="test")
    train_set.load_into_memory(1 << 32)
    x_train = train_set.batch(np.arange(len(train_set)))
    x_test = test_set.batch(np.arange(len(test_set)))

    ref_model, ref_times = train_textbook(x_train, args.epochs, device)
    ref_nll = test_neg_elbo(ref_model.encode, ref_model.decode, x_test, device)
    print(f"textbook: epochs {[round(t, 2) for t in ref_times]} s, test -ELBO {ref_nll:.2f}", flush=True)

    amp = {"auto": None, "true": True, "false": False}[args.amp]
    config = TrainConfig(epochs=args.epochs, val_fraction=0.0, device=args.device, patience=args.epochs, seed=0,
                         amp=amp)
    result = train(train_set, config, progress=False)
    ours_times = [row["seconds"] for row in result.history]
    model = result.model.to(device)
    ours_nll = test_neg_elbo(model.encode, model.decode, x_test, device)
    print(f"vaetools: epochs {[round(t, 2) for t in ours_times]} s, test -ELBO {ours_nll:.2f}", flush=True)

    ref_epoch, ours_epoch = statistics.median(ref_times), statistics.median(ours_times)
    results = {
        "benchmark": "train_speed",
        "data": "MNIST train 60,000 / test 10,000",
        "epochs": args.epochs,
        "device": str(device),
        "vaetools_amp": args.amp,
        "vaetools_precision": precision(config, model, device),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}",
        "parameters": {"textbook": sum(p.numel() for p in ref_model.parameters()),
                       "vaetools": sum(p.numel() for p in model.parameters())},
        "epoch_seconds": {"textbook": ref_times, "vaetools": ours_times},
        "median_epoch_seconds": {"textbook": ref_epoch, "vaetools": ours_epoch},
        "epoch_time_ratio_vaetools_over_textbook": ours_epoch / ref_epoch,
        "images_per_second": {"textbook": len(x_train) / ref_epoch, "vaetools": len(x_train) / ours_epoch},
        "test_neg_elbo_nats": {"textbook": ref_nll, "vaetools": ours_nll},
        "targets": {"ratio_at_most": 0.6, "vaetools_neg_elbo_lower": True},
        "met": {"speed": ours_epoch / ref_epoch <= 0.6, "quality": ours_nll < ref_nll},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps({k: results[k] for k in ("median_epoch_seconds", "epoch_time_ratio_vaetools_over_textbook",
                                               "test_neg_elbo_nats", "met")}, indent=2))


if __name__ == "__main__":
    main()
