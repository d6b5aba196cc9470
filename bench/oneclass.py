"""Anomaly detection benchmark: MNIST one-vs-rest, and simple images that fool the plain likelihood.

One-vs-rest: for each digit, train a VAE on that digit's training images only, score the 10,000
test images, and take the other nine digits as the anomalies; AUROC per digit and on average, for
every vaetools score and, in the same run, the PCA-30 reconstruction-error baseline.

Out-of-distribution pairing: each digit's model also scores 2,000 simple synthetic images (blank or
uniform grey pages, and single thick bars) against that digit's test images. Likelihood-based
scores tend to call these simple images normal (Nalisnick et al. 2019); the complexity-corrected
score should not.

    python bench/oneclass.py [--epochs 30] [--digits 0 1 ...] [--data ../shared/data/mnist.npz]
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
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vae_tools.anomaly import VAEAnomalyDetector  # noqa: E402
from vae_tools.anomaly.defaults import SCORE  # noqa: E402
from vae_tools.anomaly.score_choice import usable_scores  # noqa: E402
from vae_tools.anomaly.score_registry import list_scores  # noqa: E402
from vae_tools.config import TrainConfig, load_config  # noqa: E402
from vae_tools.data import ImageDataset  # noqa: E402
from vae_tools.data.arrays import ArrayReader  # noqa: E402
from vae_tools.training import train  # noqa: E402


OOD_SCORES = ("elbo", "iwae", "complexity", "adjusted")


def simple_images(n: int = 2000, size: int = 28, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    images = np.zeros((n, size, size), dtype=np.uint8)
    for i in range(n):
        kind = i % 4
        if kind == 0:
            continue  # blank page
        if kind == 1:
            images[i] = rng.integers(0, 256)  # uniform grey
        else:
            width = rng.integers(3, 7)
            start = rng.integers(4, size - 4 - width)
            if kind == 2:
                images[i, start:start + width, 4:-4] = 255
            else:
                images[i, 4:-4, start:start + width] = 255
    return images


def as_dataset(images: np.ndarray, name: str) -> ImageDataset:
    return ImageDataset(ArrayReader(images, name), np.arange(len(images)).astype(str), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist.npz"))
    parser.add_argument("--preset", default="anomaly", help="Training preset (configs/) used for every digit.")
    parser.add_argument("--epochs", type=int, default=None, help="Override the preset's epochs.")
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--digits", type=int, nargs="+", default=list(range(10)))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "oneclass.json"))
    args = parser.parse_args()

    with np.load(args.data) as raw:
        x_train, y_train, x_test, y_test = raw["x_train"], raw["y_train"], raw["x_test"], raw["y_test"]
    test = as_dataset(x_test, "mnist test")
    simple = simple_images()
    simple_set = as_dataset(simple, "simple images")
    overrides = {"device": args.device, **({"epochs": args.epochs} if args.epochs else {})}
    config = load_config(args.preset, overrides)

    per_digit = {}
    for digit in args.digits:
        started = time.perf_counter()
        normal_train = x_train[y_train == digit]
        is_anomaly = (y_test != digit).astype(int)

        pca = PCA(30, random_state=0).fit(normal_train.reshape(len(normal_train), -1) / 255.0)
        flat = x_test.reshape(len(x_test), -1) / 255.0
        pca_error = ((flat - pca.inverse_transform(pca.transform(flat))) ** 2).sum(1)

        torch.manual_seed(digit)
        model = train(as_dataset(normal_train, f"digit {digit}"), TrainConfig(**{**config.to_dict(), "seed": digit}),
                      progress=False).model
        device = next(model.parameters()).device
        train_seconds = time.perf_counter() - started
        # Scored as `vaetools anomalies` scores: the detector is fitted (prefit VAE) on the normal training
        # images, which set the latent mixture and the adjusted score's background weight.
        detector = VAEAnomalyDetector(vae=model, samples=args.samples).fit(as_dataset(normal_train, "train"))
        parts = detector.score_parts(test)
        aurocs = {name: float(roc_auc_score(is_anomaly, parts[name])) for name in usable_scores(model, list_scores())}
        aurocs["pca30_baseline"] = float(roc_auc_score(is_anomaly, pca_error))

        simple_parts = detector.score_parts(simple_set)
        normal_test = (y_test == digit)
        ood_truth = np.r_[np.zeros(normal_test.sum()), np.ones(len(simple))]
        ood = {name: float(roc_auc_score(ood_truth, np.r_[parts[name].to_numpy()[normal_test], simple_parts[name]]))
               for name in OOD_SCORES}
        per_digit[str(digit)] = {"auroc": aurocs, "score_used": detector.score_, "ood_simple_images_auroc": ood,
                                 "background_weight": detector.background_weight_,
                                 "train_seconds": round(train_seconds, 1), "seconds": round(time.perf_counter() - started, 1)}
        print(f"digit {digit}: " + " ".join(f"{k} {v:.4f}" for k, v in aurocs.items())
              + " | simple images: " + " ".join(f"{k} {v:.3f}" for k, v in ood.items()), flush=True)

    names = list(per_digit[str(args.digits[0])]["auroc"])
    mean = {name: float(np.mean([d["auroc"][name] for d in per_digit.values()])) for name in names}
    ood_mean = {name: float(np.mean([d["ood_simple_images_auroc"][name] for d in per_digit.values()]))
                for name in OOD_SCORES}
    report = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__,
                    "device": str(device)},
        "protocol": "MNIST one-vs-rest: train on one digit's training images, score the 10,000 test images",
        "settings": {"preset": args.preset, "config": config.to_dict(), "samples": args.samples},
        "mean_auroc": mean,
        "default_score": SCORE,
        "scores_used": sorted({d["score_used"] for d in per_digit.values()}),
        "default_score_mean_auroc": float(np.mean([d["auroc"][d["score_used"]] for d in per_digit.values()])),
        "ratio_default_score_vs_pca30": float(np.mean([d["auroc"][d["score_used"]] for d in per_digit.values()]))
                                        / mean["pca30_baseline"],
        "ood_simple_images_mean_auroc": ood_mean,
        "target": {"mean_auroc": 0.98},
        "per_digit": per_digit,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print("mean AUROC: " + " ".join(f"{k} {v:.4f}" for k, v in mean.items()))
    print("simple images vs normal digits, mean AUROC: " + " ".join(f"{k} {v:.3f}" for k, v in ood_mean.items()))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
