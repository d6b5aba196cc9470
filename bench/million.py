"""1,000,000 MNIST-sized images, end to end as a user runs them: `vaetools embed`, then
`vaetools label-propagate`, each a fresh process timed from start to finish with its own peak memory.

    python bench/million.py [--n 1000000] [--model RUN] [--labelled 0.01] [--work /tmp/million]

The images are MNIST's 70,000, each copied at up to 15 random shifts of at most 2 pixels (what a
scan or a crop does to handwriting; the labels stay true), so that the million look like real data
and the accuracy means something. Without --model a run folder is trained first with `vaetools
train`'s defaults on MNIST's 60,000 training images, and that time is recorded too. The baseline
(PCA-30 of the pixels + scikit-learn LabelSpreading) runs inside `label-propagate`, on the same
labels, and its seconds are in its metrics. Data come from ../shared/data (not part of the product).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
MAX_SHIFT = 2


def shifted_copies(x: np.ndarray, y: np.ndarray, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` images: every image of ``x`` in turn, each time shifted by a random offset of at most
    MAX_SHIFT pixels (the border filled with background), with its label."""
    rng = np.random.default_rng(seed)
    padded = np.pad(x, ((0, 0), (MAX_SHIFT, MAX_SHIFT), (MAX_SHIFT, MAX_SHIFT)))
    out = np.empty((n, *x.shape[1:]), dtype=x.dtype)
    source = np.arange(n) % len(x)
    offsets = rng.integers(0, 2 * MAX_SHIFT + 1, size=(n, 2))
    offsets[: len(x)] = MAX_SHIFT  # the originals once, unshifted
    h, w = x.shape[1:]
    for dy in range(2 * MAX_SHIFT + 1):
        for dx in range(2 * MAX_SHIFT + 1):
            rows = np.flatnonzero((offsets[:, 0] == dy) & (offsets[:, 1] == dx))
            out[rows] = padded[source[rows], dy:dy + h, dx:dx + w]
    return out, y[source]


def run_measured(command: list[str], log: Path) -> dict:
    """Run ``command`` in a fresh process; its wall seconds, exit status and peak resident memory."""
    started = time.perf_counter()
    with open(log, "w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    result = {"command": " ".join(command[1:]), "seconds": round(seconds, 1),
              "peak_rss_gib": round(usage.ru_maxrss / 2**20, 2), "exit_status": os.waitstatus_to_exitcode(status)}
    print(f"{result['command']}: {result['seconds']}s, peak {result['peak_rss_gib']} GiB, "
          f"exit {result['exit_status']}", flush=True)
    if result["exit_status"] != 0:
        raise SystemExit(f"failed; see {log}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--model", help="a run folder from `vaetools train` on 28x28 grey images")
    parser.add_argument("--labelled", type=float, default=0.01)
    parser.add_argument("--work", default="/tmp/vaetools_million", help="where the images and outputs go")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "million.json"))
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    vaetools = str(Path(sys.executable).with_name("vaetools"))
    steps = {}

    model = args.model
    if model is None:
        model = str(work / "run")
        steps["train"] = run_measured([vaetools, "train", "--data", str(SHARED / "mnist.npz"), "--out", model],
                                      work / "train.log")

    data = work / "images.npz"
    started = time.perf_counter()
    with np.load(SHARED / "mnist.npz") as raw:
        x, y = np.concatenate([raw["x_train"], raw["x_test"]]), np.concatenate([raw["y_train"], raw["y_test"]])
    images, labels = shifted_copies(x, y, args.n)
    np.savez(data, x=images, y=labels)
    del images
    print(f"wrote {args.n:,} images to {data} in {time.perf_counter() - started:.0f}s", flush=True)

    steps["embed"] = run_measured([vaetools, "embed", "--model", model, "--data", str(data),
                                   "--out", str(work / "latents.parquet")], work / "embed.log")
    propagated = work / "propagated"
    steps["label_propagate"] = run_measured(
        [vaetools, "label-propagate", "--model", model, "--data", str(data), "--labelled", str(args.labelled),
         "--out", str(propagated)], work / "label_propagate.log")
    metrics = json.loads((propagated / "metrics.json").read_text())

    report = {
        "benchmark": "million",
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "data": f"{args.n:,} 28x28 grey images: MNIST's 70,000 at up to 15 random shifts of at most {MAX_SHIFT} px",
        "labelled_fraction": args.labelled,
        "model": model,
        "steps": steps,
        "accuracy_unlabelled": metrics.get("accuracy_unlabelled"),
        "baseline": metrics.get("baseline"),
        "choices": metrics.get("choices"),
        "propagation_seconds_in_command": metrics.get("seconds"),
        "rounds": metrics.get("rounds"),
    }
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: report[k] for k in ("steps", "accuracy_unlabelled", "baseline")}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
