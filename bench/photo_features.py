"""Which features label propagation should prefer for the photo model: the same trained models, the
same labels, propagated from the latents alone and from the latents with the pixels' components.

    python bench/photo_features.py --runs DIR [DIR ...] [--per-class 1000] [--fraction 0.02] [--seed 0]

Each DIR is a run folder saved by `bench/photos.py --model-dir` (DIR/seedN). For each, every feature
set is forced (`propagate_labels(features=...)`, otherwise the defaults, refinement included) and the
accuracy on the unlabelled images recorded with its seconds and peak memory. This is the evidence
behind the photo model's `preferred_features` (vae_tools/models/photo_vae.py).
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

from vae_tools.data import load_dataset  # noqa: E402
from vae_tools.embedding import embed, latent_matrix  # noqa: E402
from vae_tools.latent.labels import hide_labels  # noqa: E402
from vae_tools.run_folder import load_run, read_run_config  # noqa: E402
from vae_tools.semi_supervised import propagate_labels  # noqa: E402
from measure import peak_gib  # noqa: E402  (bench/, beside this script)
from photos import first_per_class  # noqa: E402  (bench/, beside this script)

SHARED = ROOT.parent / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+", required=True)
    parser.add_argument("--data", default=str(SHARED / "cifar10_train"))
    parser.add_argument("--per-class", type=int, default=1000)
    parser.add_argument("--fraction", type=float, default=0.02)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--features", nargs="+", default=["latents", "latents+pixels"])
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "photo_features.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dataset = first_per_class(load_dataset(args.data), args.per_class)
    dataset.load_into_memory(8 << 30)
    y = np.asarray(dataset.labels).astype(str)
    keep = hide_labels(y, args.fraction, seed=args.seed)
    given = np.where(keep, y.astype(object), None)
    report = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "threads": args.threads,
                          "torch": torch.__version__},
              "data": {"source": args.data, "n_samples": len(dataset), "per_class": args.per_class},
              "settings": {"labelled_fraction": args.fraction, "seed": args.seed}, "runs": []}
    for run in args.runs:
        model, _ = load_run(run)
        record = Path(run) / "bench_training.json"  # what bench/photos.py recorded of its training
        training = json.loads(record.read_text()) if record.exists() else read_run_config(run)["training"]
        latents = latent_matrix(embed(model, dataset))
        row = {"run": run, "model": model.registry_name, "training": training, "by_features": {}}
        for features in args.features:
            started = time.perf_counter()
            result = propagate_labels(model, dataset, given, features=features, seed=args.seed, y_true=y,
                                      latents=latents, progress=False)
            accuracy = float(np.mean(result.propagator.transduction_[~keep] == y[~keep]))
            row["by_features"][features] = {"accuracy": accuracy, "seconds": round(time.perf_counter() - started, 1),
                                            "rounds": [(r["round"], r["accepted"], r["accuracy_unlabelled"])
                                                       for r in result.rounds], "peak_gib": peak_gib()}
            print(f"{run} {features}: {accuracy:.4f}", flush=True)
        report["runs"].append(row)
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
