"""Does the GPU's default batch cost quality? The same training on the CPU, where it can be checked
without a GPU: MNIST's 60,000 training images at the CPU default (128 images a step, lr 2e-3) and at
what vae_tools/device_settings.py picks for a GPU (1,024 a step, lr scaled by the square-root
rule), each with the default length (at least 30 epochs and 3,000 steps, early stopping); test
-ELBO on the 10,000 test images, wall time and peak memory beside each. The precision is this CPU's
default for both (bf16 where it is native; a GPU trains in fp32).

    python bench/gpu_batch_quality.py [--seeds 0] [--out bench/results/gpu_batch_quality.json]
"""

from __future__ import annotations

import argparse
import json
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
from vae_tools.device_settings import CPU_BATCH_SIZE, GPU_BATCH_SIZE, scaled_lr  # noqa: E402
from vae_tools.training import train  # noqa: E402
from measure import peak_gib  # noqa: E402  (bench/, beside this script)
from train_speed import test_neg_elbo  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "gpu_batch_quality.json"))
    args = parser.parse_args()
    train_set = load_dataset(str(SHARED / "mnist.npz"), split="train")
    test = load_dataset(str(SHARED / "mnist.npz"), split="test")
    test_x = test.batch(np.arange(len(test)))
    rows = []
    for seed in args.seeds:
        for batch_size in (CPU_BATCH_SIZE, GPU_BATCH_SIZE):
            started = time.perf_counter()
            result = train(train_set, TrainConfig(batch_size=batch_size, lr=scaled_lr(batch_size), seed=seed),
                           progress=False)
            row = {"seed": seed, "batch_size": batch_size, "lr": scaled_lr(batch_size), "epochs": len(result.history),
                   "best_epoch": result.best_epoch, "seconds": round(time.perf_counter() - started, 1),
                   "best_val_neg_elbo": min(r["val_loss"] for r in result.history),
                   "test_neg_elbo": test_neg_elbo(result.model.encode, result.model.decode, test_x, torch.device("cpu")),
                   "peak_gib_so_far": peak_gib()}
            rows.append(row)
            print(row, flush=True)
    out = {"machine": {"platform": platform.platform(), "cpus": torch.get_num_threads(), "torch": torch.__version__},
           "data": "MNIST 60,000 training images (10% held out for validation), test -ELBO on the 10,000 test images",
           "rows": rows}
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
