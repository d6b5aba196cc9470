"""Do the defaults hold off MNIST? Label propagation, clustering and one-class anomaly scores on
several data sets, each with the same (README) default settings and its plain baseline in the same run.

    python bench/generalise.py [--data digits kmnist mnist] [--seeds 0 1 2] [--skip-oneclass]

(--skip-oneclass keeps the one-vs-rest results of the file it overwrites, marked as carried over.)

- Label propagation: `propagate_labels` with its defaults (features chosen by cross-validation,
  guarded refinement) on a conv VAE trained with `vaetools train`'s defaults on all the images
  (no labels); accuracy on the unlabelled samples. Baseline: PCA + scikit-learn
  LabelSpreading(kernel="knn").
- Clustering: `vaetools cluster`'s defaults (k-means on a 10-d UMAP map of the features that auto
  picks by silhouette, bench/cluster_features.py) for each seed, with every candidate's accuracy;
  baseline: k-means on PCA-50 of the pixels. A diagnostic beside it: the purity of 1, 2 and 4
  k-means clusters per class on the UMAP map of the latents.
- One-vs-rest (KMNIST only): train on class c among the first 5,000 images, score the last 5,000,
  the other classes anomalous; the default score vs PCA-30 reconstruction error.

Data: digits ships with scikit-learn; KMNIST and MNIST come from ../shared/data (not part of the
product). No setting here is chosen per data set.
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
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import roc_auc_score
from sklearn.semi_supervised import LabelSpreading

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vae_tools.anomaly import VAEAnomalyDetector  # noqa: E402
from vae_tools.anomaly.defaults import SCORE  # noqa: E402
from vae_tools.config import TrainConfig  # noqa: E402
from vae_tools.data import ImageDataset, load_dataset  # noqa: E402
from vae_tools.data.arrays import ArrayReader  # noqa: E402
from vae_tools.embedding import embed, latent_matrix  # noqa: E402
from vae_tools.latent.clustering import LatentClusterer  # noqa: E402
from vae_tools.latent.features import pixel_components  # noqa: E402
from vae_tools.latent.labels import hide_labels  # noqa: E402
from vae_tools.semi_supervised import dataset_pixels, propagate_labels  # noqa: E402
from vae_tools.training import train  # noqa: E402
from cluster_features import clustering_by_seed  # noqa: E402  (bench/, beside this script)
from measure import peak_gib, time_to_accuracy  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
ONE_VS_REST_SCORES = ("adjusted", "complexity", "elbo")
# name: (source, labelled fraction, PCA size of the baseline, target accuracy) -- the protocol.
DATASETS = {
    "digits": ("digits", 0.05, 30, 0.96),
    "kmnist": (str(SHARED / "kmnist_test.npz"), 0.02, 50, 0.90),
    "mnist": (str(SHARED / "mnist.npz"), 0.01, 50, 0.98),
}


def as_dataset(images: np.ndarray, name: str) -> ImageDataset:
    return ImageDataset(ArrayReader(images, name), np.arange(len(images)).astype(str), None)


def label_propagation(name: str, dataset, model, seeds, fraction, pca_size, device) -> dict:
    y = dataset.labels
    pixels = dataset_pixels(dataset)
    started = time.perf_counter()
    baseline_features = PCA(pca_size, random_state=0).fit_transform(pixels)
    pca_seconds = time.perf_counter() - started
    latents = latent_matrix(embed(model, dataset, device=device))
    runs = []
    for seed in seeds:
        keep = hide_labels(y, fraction, seed=seed)
        given = np.where(keep, y, -1)
        started = time.perf_counter()
        result = propagate_labels(model, dataset, given, seed=seed, device=device, y_true=y, latents=latents,
                                  progress=False)
        seconds = time.perf_counter() - started
        accuracy = float(np.mean(result.propagator.transduction_[~keep] == y[~keep]))
        started = time.perf_counter()
        baseline = LabelSpreading(kernel="knn").fit(baseline_features, given)
        base_seconds = time.perf_counter() - started + pca_seconds
        base_accuracy = float(np.mean(baseline.transduction_[~keep] == y[~keep]))
        runs.append({"seed": seed, "accuracy": accuracy, "baseline_accuracy": base_accuracy,
                     "features": result.features, "feature_cv_accuracy": result.feature_scores,
                     "maps": len(result.spaces),
                     "rounds": result.rounds, "refinement_note": result.refinement_note,
                     "time_to_accuracy": time_to_accuracy(result.rounds),
                     "seconds": round(seconds, 1), "baseline_seconds": round(base_seconds, 1),
                     "peak_gib_so_far": peak_gib()})
        round0 = result.rounds[0].get("accuracy_unlabelled")
        print(f"{name} seed {seed}: {accuracy:.4f} (round 0 {round0:.4f}, features {result.features}, "
              f"rounds kept {sum(r['accepted'] for r in result.rounds) - 1}) vs baseline {base_accuracy:.4f}, "
              f"{seconds:.0f}s (baseline {base_seconds:.0f}s)", flush=True)
    return {"runs": runs, **summary(runs, "accuracy"), **summary(runs, "baseline_accuracy"),
            **summary(runs, "seconds"), **summary(runs, "baseline_seconds"),
            "never_below_round_0": all(r["accuracy"] >= r["rounds"][0]["accuracy_unlabelled"] for r in runs)}


def summary(runs, key) -> dict:
    values = [r[key] for r in runs]
    return {f"{key}_mean": float(np.mean(values)), f"{key}_std": float(np.std(values))}


def clustering(dataset, model, device, seeds) -> dict:
    y = dataset.labels
    n_classes = len(np.unique(y))
    latents = latent_matrix(embed(model, dataset, device=device))
    pixels = pixel_components(dataset_pixels(dataset))
    out = clustering_by_seed(y, latents, pixels, seeds)
    latent_map = LatentClusterer(n_clusters=n_classes).fit(latents).embedding_
    out["latents_purity_by_cluster_count"] = purity_by_cluster_count(y, latent_map, n_classes)
    return {**out, "peak_gib_so_far": peak_gib()}


def purity_by_cluster_count(y, space, n_classes) -> dict:
    """Why clustering accuracy stops where it does: the share of images whose k-means cluster (on
    the same UMAP map) is mostly their own class, for 1, 2 and 4 clusters per class. When purity
    climbs steeply with more clusters, the classes are made of several separate groups that no
    clustering into exactly one group per class can match."""
    purity = {}
    for k in (n_classes, 2 * n_classes, 4 * n_classes):
        clusters = KMeans(k, n_init=4, random_state=0).fit_predict(space)
        purity[str(k)] = float(sum(np.unique(y[clusters == c], return_counts=True)[1].max()
                                   for c in np.unique(clusters)) / len(y))
    return purity


def one_vs_rest(images: np.ndarray, labels: np.ndarray, device: str) -> dict:
    first, last = images[:5000], images[5000:]
    first_y, last_y = labels[:5000], labels[5000:]
    per_class = {}
    for c in np.unique(labels):
        normal = first[first_y == c]
        truth = (last_y != c).astype(int)
        pca = PCA(30, random_state=0).fit(normal.reshape(len(normal), -1) / 255.0)
        flat = last.reshape(len(last), -1) / 255.0
        pca_error = ((flat - pca.inverse_transform(pca.transform(flat))) ** 2).sum(1)
        model = train(as_dataset(normal, f"class {c}"), TrainConfig(seed=int(c), device=device), progress=False).model
        # As `vaetools anomalies` scores: fitted (prefit VAE) on the normal images, then scoring new ones.
        detector = VAEAnomalyDetector(vae=model, samples=16).fit(as_dataset(normal, f"class {c}"))
        parts = detector.score_parts(as_dataset(last, "last 5000"))
        per_class[str(c)] = {**{name: float(roc_auc_score(truth, parts[name])) for name in ONE_VS_REST_SCORES},
                             "pca30_baseline": float(roc_auc_score(truth, pca_error)),
                             "score_used": detector.score_,
                             "default_score_auroc": float(roc_auc_score(truth, parts[detector.score_])),
                             "background_weight": detector.background_weight_}
        print(f"one-vs-rest class {c}: " + " ".join(f"{k} {v:.4f}" for k, v in per_class[str(c)].items()
                                                    if isinstance(v, float)), flush=True)
    mean = {k: float(np.mean([v[k] for v in per_class.values()]))
            for k in (*ONE_VS_REST_SCORES, "default_score_auroc", "pca30_baseline")}
    return {"default_score": SCORE, "scores_used": sorted({v["score_used"] for v in per_class.values()}),
            "mean_auroc": mean, "per_class": per_class, "target": 0.92}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="+", default=["digits", "kmnist"], choices=list(DATASETS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--skip-oneclass", action="store_true")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "generalise.json"))
    args = parser.parse_args()
    previous = json.loads(Path(args.out).read_text()).get("data", {}) if Path(args.out).exists() else {}

    report = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__},
              "settings": {"train": TrainConfig().to_dict(), "propagation": "propagate_labels defaults"},
              "data": {}}
    for name in args.data:
        source, fraction, pca_size, target = DATASETS[name]
        dataset = load_dataset(source)
        started = time.perf_counter()
        trained = train(dataset, TrainConfig(device=args.device), progress=False)
        model, device = trained.model, next(trained.model.parameters()).device
        entry = {"n_samples": len(dataset), "labelled_fraction": fraction, "baseline": f"PCA-{pca_size} + LabelSpreading(knn)",
                 "target_accuracy": target, "train_seconds": round(time.perf_counter() - started, 1),
                 "train_epochs": len(trained.history), "best_epoch": trained.best_epoch,
                 "train_peak_gib_so_far": peak_gib()}
        print(f"{name}: {len(dataset)} images, VAE {entry['train_epochs']} epochs (best {trained.best_epoch}) "
              f"in {entry['train_seconds']}s", flush=True)
        entry["label_propagation"] = label_propagation(name, dataset, model, args.seeds, fraction, pca_size, device)
        entry["clustering"] = clustering(dataset, model, device, args.seeds)
        summary_ = entry["clustering"]["summary"]
        print(f"{name} clustering: {summary_['accuracy']['mean']:.4f} ±{summary_['accuracy']['std']:.4f} "
              f"vs baseline {summary_['baseline_kmeans_pca50']['mean']:.4f}", flush=True)
        if name == "kmnist" and not args.skip_oneclass:
            with np.load(source) as raw:
                entry["one_vs_rest"] = one_vs_rest(raw["x_test"], raw["y_test"], args.device)
        elif name == "kmnist" and "one_vs_rest" in previous.get(name, {}):
            entry["one_vs_rest"] = {**previous[name]["one_vs_rest"],
                                    "carried_over": "from the previous run of this file (this one ran --skip-oneclass)"}
        report["data"][name] = entry
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
