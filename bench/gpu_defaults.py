"""The GPU rows of issue 29 as one short check: `vaetools train` with no flags on MNIST's 60,000
training images (images/s of its epochs after the first, test -ELBO on the 10,000 test images), then
`vaetools label-propagate` on all 70,000 at 2% labels with the default refinement, timed as a fresh
process. The baseline of the training row is the device's own: the same trainer at the CPU's
settings (batch 128, uncompiled) in the same run.

    python bench/gpu_defaults.py --data ../shared/data/mnist.npz [--out bench/results/gpu_defaults.json]

The device machine has no ../shared: copy mnist.npz (11 MB) to an ignored path in the checkout and
carry it. Without CUDA the script says so and stops.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vae_tools.config import TrainConfig  # noqa: E402
from vae_tools.data import load_dataset  # noqa: E402
from vae_tools.training import train  # noqa: E402
from vae_tools.device_settings import CPU_BATCH_SIZE  # noqa: E402
from train_speed import test_neg_elbo  # noqa: E402  (bench/, beside this script)


def training_row(train_set, test_x, config: TrainConfig, out_dir: Path) -> dict:
    started = time.perf_counter()
    result = train(train_set, config, out_dir=out_dir, progress=False)
    seconds = [row["seconds"] for row in result.history]
    stored = json.loads((out_dir / "config.json").read_text())
    n = round(len(train_set) * (1 - config.val_fraction))
    model = result.model.to("cuda")
    return {"batch_size": stored["training"]["batch_size"], "lr": stored["training"]["lr"],
            "compile": stored["choices"]["compile"]["value"], "epochs": len(seconds),
            "images_per_second": n / statistics.median(seconds[1:] or seconds),
            "wall_seconds": round(time.perf_counter() - started, 1),
            "test_neg_elbo": test_neg_elbo(model.encode, model.decode, test_x, torch.device("cuda")),
            "choices": {k: stored["choices"][k].get("why") for k in ("batch_size", "lr", "compile", "precision")}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "mnist.npz"))
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "gpu_defaults.json"))
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device here; this check is for a GPU machine")
    work = Path(tempfile.mkdtemp(prefix="gpu_defaults_"))
    train_set = load_dataset(args.data, split="train")
    test = load_dataset(args.data, split="test")
    test_x = test.batch(np.arange(len(test)))
    result = {"machine": {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__,
                          "platform": platform.platform()}}
    result["default"] = training_row(train_set, test_x, TrainConfig(), work / "default")
    print("default", result["default"], flush=True)
    result["cpu_settings"] = training_row(train_set, test_x, TrainConfig(batch_size=CPU_BATCH_SIZE, compile=False),
                                          work / "cpu_settings")
    print("cpu settings", result["cpu_settings"], flush=True)
    command = [str(Path(sys.executable).with_name("vaetools")), "label-propagate", "--model", str(work / "default"),
               "--data", args.data, "--split", "all", "--labelled", "0.02", "--out", str(work / "propagated")]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    metrics = json.loads((work / "propagated" / "metrics.json").read_text()) if done.returncode == 0 else {}
    result["label_propagate"] = {"seconds": round(seconds, 1), "exit_status": done.returncode,
                                 "accuracy_unlabelled": metrics.get("accuracy_unlabelled"),
                                 "baseline": metrics.get("baseline"), "stderr_tail": done.stderr[-2000:]}
    print("label-propagate", result["label_propagate"], flush=True)
    result["targets"] = {"default_train_images_per_second": 200_000, "label_propagate_seconds": 30}
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
