"""Sample quality on MNIST: Fréchet distance of generated images to the test set.

The feature space needs no download: a small convolutional classifier trained here, once, on a
random 50,000 of the MNIST training images (its test accuracy is recorded); an image's features are
the 128 activations before its last layer. The Fréchet distance (as in FID, Heusel et al. 2017)
compares the mean and covariance of those features over 10,000 generated images with those of the
10,000 test images; lower is better. The other 10,000 training images, which the classifier never
saw, give the floor: what real images score. (Subsets must be random: the MNIST files are ordered by
writer, and two consecutive blocks of 5,000 real images differ by more than most samplers do.)

Scored, per seed, with the same epochs over the training images:
- vaetools' default model, codes from the prior N(0, I) (``vaetools sample --sampler prior``);
- the same model, codes from the Gaussian mixture fitted to its training codes (``--sampler gmm``,
  the default);
- a plain VAE written as pytorch/examples' vae/main.py (784-400-20 MLP, Adam 1e-3, batch 128),
  codes from its prior.

    python bench/generate.py [--epochs 10] [--seeds 0 1 2] [--data ../shared/data/mnist.npz]
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from vaetools_pipelines.figures import save_grid  # noqa: E402
from train_speed import train_textbook  # noqa: E402
from vae_tools.config import load_config  # noqa: E402
from vae_tools.data import ImageDataset  # noqa: E402
from vae_tools.data.arrays import ArrayReader  # noqa: E402
from vae_tools.generation import sample, summarise_latents  # noqa: E402
from vae_tools.training import train  # noqa: E402

N_GENERATED = 10_000
RESULTS = Path(__file__).resolve().parent / "results"


class ExamplesVAE(nn.Module):
    """pytorch/examples vae/main.py: 784-400-20 fully connected, ReLU, Bernoulli logits out."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc21, self.fc22 = nn.Linear(784, 400), nn.Linear(400, 20), nn.Linear(400, 20)
        self.fc3, self.fc4 = nn.Linear(20, 400), nn.Linear(400, 784)
        self.latent_dim = 20

    def encode(self, x):
        h = F.relu(self.fc1(x.view(-1, 784)))
        return self.fc21(h), self.fc22(h)

    def decode(self, z):
        return self.fc4(F.relu(self.fc3(z))).view(-1, 1, 28, 28)

    def forward(self, x):
        mu, logvar = self.encode(x)
        return self.decode(mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)), mu, logvar


class FeatureNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3), nn.ReLU(),
                                  nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64 * 5 * 5, 128), nn.ReLU())
        self.head = nn.Linear(128, 10)

    def forward(self, x):
        return self.head(self.body(x))


def train_features(x: torch.Tensor, y: torch.Tensor, epochs: int = 2, seed: int = 0) -> FeatureNet:
    torch.manual_seed(seed)
    net = FeatureNet()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    for _ in range(epochs):
        order = torch.randperm(len(x))
        for start in range(0, len(x), 128):
            batch = order[start:start + 128]
            optimizer.zero_grad()
            F.cross_entropy(net(x[batch]), y[batch]).backward()
            optimizer.step()
    return net.eval()


@torch.no_grad()
def features(net: FeatureNet, images) -> np.ndarray:
    images = torch.as_tensor(np.asarray(images, dtype=np.float32))
    return torch.cat([net.body(images[s:s + 1000]) for s in range(0, len(images), 1000)]).double().numpy()


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """|mean_a - mean_b|² + tr(A + B - 2 (A B)^½). The trace of (A B)^½ is taken as the sum of the
    square roots of the eigenvalues of A^½ B A^½ (symmetric, so stable where A B is singular, as
    with ReLU features that are always 0)."""
    mean_a, mean_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    values, vectors = np.linalg.eigh(cov_a)
    root_a = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    middle = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
    trace_root = np.sqrt(np.clip(middle, 0, None)).sum()
    return float(((mean_a - mean_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_root)


@torch.no_grad()
def examples_samples(model: ExamplesVAE, n: int, seed: int) -> np.ndarray:
    z = torch.from_numpy(np.random.default_rng(seed).standard_normal((n, model.latent_dim)).astype(np.float32))
    return torch.sigmoid(model.decode(z)).numpy()


def spread(values) -> dict:
    return {"mean": statistics.mean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "values": values}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/data/mnist.npz"))
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", default=str(RESULTS / "generate.json"))
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    mnist = np.load(args.data)
    x_train = torch.from_numpy(mnist["x_train"][:, None].astype(np.float32) / 255)
    x_test = torch.from_numpy(mnist["x_test"][:, None].astype(np.float32) / 255)

    started = time.perf_counter()
    order = np.random.default_rng(0).permutation(len(x_train))
    fit, held_out = torch.from_numpy(order[N_GENERATED:]), torch.from_numpy(order[:N_GENERATED])
    net = train_features(x_train[fit], torch.from_numpy(mnist["y_train"].astype(np.int64))[fit])
    with torch.no_grad():
        accuracy = float((net(x_test).argmax(1).numpy() == mnist["y_test"]).mean())
    test_features = features(net, x_test)
    floor = frechet_distance(features(net, x_train[held_out]), test_features)
    print(f"feature classifier: test accuracy {accuracy:.4f}; 10,000 unseen real training images vs test: "
          f"{floor:.3f}", flush=True)

    dataset = ImageDataset(ArrayReader(mnist["x_train"], "mnist train"), [str(i) for i in range(len(x_train))],
                           None, 1, (28, 28))
    scores = {"vaetools_prior": [], "vaetools_gmm": [], "examples_vae_prior": []}
    details = []
    for seed in args.seeds:
        t0 = time.perf_counter()
        model = train(dataset, load_config(None, {"epochs": args.epochs, "seed": seed, "device": "cpu"}),
                      progress=False).model
        trained = time.perf_counter() - t0
        mixture = summarise_latents(model, dataset, seed=seed).mixture
        prior = sample(model, N_GENERATED, seed=seed).images
        gmm = sample(model, N_GENERATED, sampler=mixture, seed=seed).images
        plain, _ = train_textbook(x_train, args.epochs, torch.device("cpu"), seed=seed, model_class=ExamplesVAE)
        plain_images = examples_samples(plain, N_GENERATED, seed)
        row = {"seed": seed, "train_seconds": trained, "mixture_components": mixture.n_components_}
        for name, images in (("vaetools_prior", prior), ("vaetools_gmm", gmm), ("examples_vae_prior", plain_images)):
            row[name] = frechet_distance(features(net, images), test_features)
            scores[name].append(row[name])
            if seed == args.seeds[0]:
                save_grid(images[:64], RESULTS / f"generate_{name}.png", columns=8)
        details.append(row)
        print(json.dumps(row), flush=True)

    result = {
        "benchmark": "Fréchet distance to the MNIST test set in a classifier's feature space (lower is better)",
        "feature_classifier": {"layers": "conv32-pool-conv64-pool-fc128 (features)-fc10", "epochs": 2,
                               "trained_on": "a random 50,000 of the training images", "test_accuracy": accuracy},
        "real_held_out_train_vs_test": floor, "n_generated": N_GENERATED, "epochs": args.epochs, "seeds": args.seeds,
        "fid": {name: spread(values) for name, values in scores.items()},
        "gmm_beats_prior_every_seed": all(g < p for g, p in zip(scores["vaetools_gmm"], scores["vaetools_prior"])),
        "per_seed": details,
        "grids": [f"generate_{name}.png" for name in scores],
        "machine": {"cpu_threads": torch.get_num_threads(), "platform": platform.platform(), "torch": torch.__version__},
        "seconds": time.perf_counter() - started,
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("real_held_out_train_vs_test", "fid", "gmm_beats_prior_every_seed")},
                     indent=2))


if __name__ == "__main__":
    main()
