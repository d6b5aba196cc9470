"""What the photo model's rotation term costs in training time: the photo model with its default
rotation weight against the same model without the term (rotation=0), same images, same run,
alternating so that a noisy machine slows both alike.

    python bench/photo_term_cost.py [--per-class 500] [--epochs 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vae_tools.config import TrainConfig  # noqa: E402
from vae_tools.data import load_dataset  # noqa: E402
from vae_tools.models.photo_vae import ROTATION  # noqa: E402
from vae_tools.training import train  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from measure import peak_gib  # noqa: E402
from photos import SHARED, first_per_class  # noqa: E402


def _timed(dataset, config: TrainConfig, rotation: float) -> list:
    """Epoch times of one training with the rotation weight ``rotation`` (the model built as the
    trainer builds it, with that one argument changed)."""
    from vae_tools.training import trainer

    build = trainer.build_model

    def with_rotation(cfg, shape):
        model = build(cfg, shape)
        if rotation == 0:
            model.rotation, model.rotation_head = 0.0, None
        return model

    trainer.build_model = with_rotation
    try:
        history = train(dataset, config, progress=False).history
    finally:
        trainer.build_model = build
    return [row["seconds"] for row in history]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(SHARED / "cifar10_train"))
    parser.add_argument("--per-class", type=int, default=500)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "photo_term_cost.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dataset = first_per_class(load_dataset(args.data), args.per_class)
    dataset.load_into_memory(8 << 30)
    times = {"with_rotation": [], "without": []}
    for repeat in range(args.repeats):
        for name, weight in (("with_rotation", ROTATION), ("without", 0.0)):
            seconds = _timed(dataset, TrainConfig(model="photo", likelihood="gaussian", epochs=args.epochs,
                                                  seed=repeat), weight)
            times[name].extend(seconds)
            print(f"repeat {repeat} {name}: {[round(s, 1) for s in seconds]} s an epoch", flush=True)
    median = {name: statistics.median(values) for name, values in times.items()}
    report = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "threads": args.threads,
                          "torch": torch.__version__},
              "data": {"source": args.data, "n_samples": len(dataset)}, "epochs": args.epochs, "repeats": args.repeats,
              "rotation_weight": ROTATION, "epoch_seconds": times, "median_epoch_seconds": median,
              "ratio": median["with_rotation"] / median["without"],
              "peak_gib": peak_gib()}
    print(json.dumps({k: report[k] for k in ("median_epoch_seconds", "ratio", "peak_gib")}))
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
