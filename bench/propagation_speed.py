"""Propagation speed on 70,000 points: vaetools' LabelPropagator against scikit-learn's
LabelSpreading (knn kernel) on the same 16-d features, same run, same machine.

The features are a 16-component PCA of all MNIST images, standing in for VAE latents (the cost of
propagation depends on the number and size of the vectors, not on where they came from). The first
call in a fresh process includes numba's compilation of UMAP's graph code; later calls do not.

    python bench/propagation_speed.py [--data ../shared/data/mnist.npz] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.decomposition import PCA
from sklearn.semi_supervised import LabelSpreading

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vae_tools.latent import LabelPropagator, hide_labels  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist.npz"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "propagation_speed.json"))
    args = parser.parse_args()
    with np.load(args.data) as raw:
        images = np.concatenate([raw["x_train"], raw["x_test"]]).reshape(70000, -1).astype(np.float32) / 255
        y = np.concatenate([raw["y_train"], raw["y_test"]]).astype(int)
    x = PCA(16, random_state=0).fit_transform(images).astype(np.float32)
    given = np.where(hide_labels(y, 0.01, seed=0), y, -1)
    hidden = given == -1

    def timed(fit):
        started = time.perf_counter()
        model = fit()
        return time.perf_counter() - started, float(np.mean(model.transduction_[hidden] == y[hidden]))

    first, accuracy = timed(lambda: LabelPropagator().fit(x, given))
    ours = [timed(lambda: LabelPropagator().fit(x, given))[0] for _ in range(args.repeats)]
    theirs = [timed(lambda: LabelSpreading(kernel="knn", n_neighbors=15, max_iter=200).fit(x, given)) for _ in range(args.repeats)]
    report = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "n": len(x), "dim": x.shape[1], "labelled_fraction": 0.01,
        "vaetools_first_call_seconds": round(first, 2),
        "vaetools_seconds_median": round(statistics.median(ours), 2),
        "sklearn_labelspreading_seconds_median": round(statistics.median(t for t, _ in theirs), 2),
        "ratio_vaetools_vs_sklearn": statistics.median(ours) / statistics.median(t for t, _ in theirs),
        "accuracy_unlabelled": {"vaetools": accuracy, "sklearn": theirs[0][1]},
        "target_seconds": 15,
    }
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
