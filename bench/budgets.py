"""What each `label-propagate --budget` buys on one run folder: accuracy on the unlabelled and
seconds for every budget and seed, each beside the plain baseline (PCA of the pixels + scikit-learn
LabelSpreading) on the same labels in the same run.

    python bench/budgets.py --data ../shared/data/kmnist_test.npz --model runs/kmnist \\
        [--fraction 0.02] [--seeds 0 1 2] [--budgets balanced best] [--out bench/results/budgets_kmnist.json]
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vae_tools.data import load_dataset  # noqa: E402
from vae_tools.device import resolve_device  # noqa: E402
from vae_tools.latent import LabelPropagator, baseline, hide_labels  # noqa: E402
from vae_tools.latent.defaults import BUDGETS  # noqa: E402
from vae_tools.run_folder import load_run  # noqa: E402
from vae_tools.semi_supervised import dataset_pixels, propagate_labels  # noqa: E402
from measure import peak_gib  # noqa: E402  (bench/, beside this script)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--model", required=True, help="a run folder from `vaetools train` on --data")
    parser.add_argument("--fraction", type=float, default=0.02)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--budgets", nargs="+", default=["balanced", "best"], choices=list(BUDGETS))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    dataset = load_dataset(args.data)
    y = dataset.labels
    model, _ = load_run(args.model, resolve_device(args.device))
    device = next(model.parameters()).device
    pixels = dataset_pixels(dataset)
    runs = []
    for seed in args.seeds:
        keep = hide_labels(y, args.fraction, seed=seed)
        given = np.where(keep, y.astype(object), None)
        started = time.perf_counter()
        predicted = baseline.baseline_predictions(pixels, given)
        row = {"seed": seed, "baseline": {"accuracy": float(np.mean(predicted[~keep].astype(str) == y[~keep].astype(str))),
                                          "seconds": round(time.perf_counter() - started, 1)}}
        for budget in args.budgets:
            started = time.perf_counter()
            result = propagate_labels(model, dataset, np.where(keep, y, -1), LabelPropagator(random_state=seed),
                                      budget=budget, device=device, seed=seed, progress=False, y_true=y)
            kept = [r for r in result.rounds if r["accepted"]][-1]
            row[budget] = {"accuracy": kept["accuracy_unlabelled"], "round0": result.rounds[0]["accuracy_unlabelled"],
                           "seconds": round(time.perf_counter() - started, 1), "features": result.features,
                           "refinement_note": result.refinement_note, "rounds": result.rounds,
                           "peak_rss_gib_so_far": peak_gib()}
            print(f"seed {seed} {budget}: {kept['accuracy_unlabelled']:.4f} (round 0 "
                  f"{result.rounds[0]['accuracy_unlabelled']:.4f}) in {row[budget]['seconds']:.0f}s", flush=True)
        print(f"seed {seed} baseline: {row['baseline']['accuracy']:.4f} in {row['baseline']['seconds']:.0f}s", flush=True)
        runs.append(row)
    summary = {}
    for name in [*args.budgets, "baseline"]:
        accuracies = [r[name]["accuracy"] for r in runs]
        summary[name] = {"accuracy_mean": float(np.mean(accuracies)), "accuracy_std": float(np.std(accuracies)),
                         "accuracy_per_seed": accuracies,
                         "seconds_mean": round(float(np.mean([r[name]["seconds"] for r in runs])), 1)}
        print(f"{name}: {summary[name]['accuracy_mean']:.4f} ±{summary[name]['accuracy_std']:.4f} in "
              f"{summary[name]['seconds_mean']:.0f}s a seed")
    report = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__,
                          "device": str(device)},
              "data": {"source": args.data, "n": len(dataset)}, "run_folder": args.model,
              "fraction": args.fraction, "seeds": args.seeds, "baseline_method": baseline.describe(),
              "summary": summary, "runs": runs, "peak_rss_gib_this_process": peak_gib()}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
