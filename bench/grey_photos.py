"""Which model suits small grey photographs: the conv model and the photo model, same run, same images.

    python bench/grey_photos.py [--per-class 1000] [--seeds 0 1 2] [--threads 2]

`--architecture auto` gives continuous-tone images the photo model, colour or grey. Whether that
holds for small grey photos is measured here on a grey photo set built from the colour ones:
CIFAR-10's training photos read in grey at 28x28 (the size and tone of the grey product photos users
bring), the first N of each class. For each seed both models are trained with the defaults
(`TrainConfig(model=...)`, 45-minute CPU budget for the photo model), then label propagation at 2%
labels (`propagate_labels` defaults; accuracy on the unlabelled) and one-vs-rest is left to
bench/photos.py. Baseline in the same run: PCA-30 + LabelSpreading. Wall time and peak memory beside
every figure.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vae_tools.config import TrainConfig  # noqa: E402
from vae_tools.data import load_dataset  # noqa: E402
from vae_tools.semi_supervised import dataset_pixels  # noqa: E402
from vae_tools.training import train  # noqa: E402
from measure import peak_gib  # noqa: E402  (bench/, beside this script)
from photos import first_per_class, label_propagation  # noqa: E402  (bench/, beside this script)

SHARED = ROOT.parent / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(SHARED / "cifar10_train"))
    parser.add_argument("--per-class", type=int, default=1000)
    parser.add_argument("--size", type=int, default=28)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--models", nargs="+", default=["conv", "photo"])
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "grey_photos.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dataset = first_per_class(load_dataset(args.data, image_size=args.size, channels=1), args.per_class)
    dataset.load_into_memory(8 << 30)
    pixels = dataset_pixels(dataset)
    report = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "threads": args.threads,
                          "torch": torch.__version__},
              "data": {"source": args.data, "grey_size": args.size, "n_samples": len(dataset),
                       "per_class": args.per_class},
              "settings": {"train": "TrainConfig(model=...) defaults", "labelled_fraction": 0.02}, "runs": []}
    for seed in args.seeds:
        for name in args.models:
            started = time.perf_counter()
            trained = train(dataset, TrainConfig(seed=seed, model=name), progress=False)
            seconds = time.perf_counter() - started
            device = next(trained.model.parameters()).device
            result = label_propagation(dataset, trained.model, seed, device, pixels)
            run = {"seed": seed, "model": name, "likelihood": trained.model.likelihood, "epochs": len(trained.history),
                   "train_seconds": round(seconds, 1), "train_peak_gib": peak_gib(), "label_propagation": result}
            print(f"seed {seed} {name}: {len(trained.history)} epochs in {seconds:.0f}s; propagation "
                  f"{result['accuracy']:.4f} (baseline {result['baseline_accuracy']:.4f})", flush=True)
            report["runs"].append(run)
            report["summary"] = {
                name: {"mean": float(np.mean(values)), "std": float(np.std(values)), "values": values}
                for name in args.models
                if (values := [r["label_propagation"]["accuracy"] for r in report["runs"] if r["model"] == name])}
            Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
