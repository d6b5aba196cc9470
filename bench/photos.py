"""Colour photographs with the README's defaults: label propagation at 2%, clustering and one-vs-rest
anomaly detection, each beside its plain baseline in the same run, over seeds.

    python bench/photos.py [--per-class 5000] [--seeds 0 1 2] [--oneclass] [--threads 2]

- The model: `vaetools train`'s defaults (`TrainConfig()`): on photos `auto` picks the photo model
  (ELBO plus the consistency term over crops, flips and colour changes) and says why; its training
  length is the default one, stated up front by the trainer and recorded here with the wall time.
- Label propagation: `propagate_labels` with its defaults on the latents of all the images (no labels
  used for training); accuracy on the unlabelled. Baseline: PCA-30 of the pixels + scikit-learn
  LabelSpreading(kernel="knn").
- Clustering (10 clusters, no labels): `vaetools cluster`'s defaults for each seed; baseline k-means on
  PCA-50 of the pixels (bench/cluster_features.py).
- One-vs-rest (--oneclass): for each class, train on 80% of that class's images, score a held-back
  20% of every class (the other classes anomalous) with the default score (`auto`: which one it
  chose and why is recorded per class, beside every other score's AUROC); baseline PCA-30
  reconstruction error. Ten trainings per seed: the slow part, so --oneclass-epochs states a budget.

Data: ../shared/data/cifar10_train (CIFAR-10's 50,000 training photos as JPEG files in class folders),
not part of the product; --per-class takes the first N of each class (a stated subset). The issue
keeps the test split back so that nothing here is tuned to it.
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
from sklearn.semi_supervised import LabelSpreading

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vae_tools.anomaly import VAEAnomalyDetector  # noqa: E402
from vae_tools.anomaly.defaults import SCORE  # noqa: E402
from vae_tools.config import TrainConfig  # noqa: E402
from vae_tools.data import load_dataset  # noqa: E402
from vae_tools.embedding import embed, latent_matrix  # noqa: E402
from vae_tools.latent.features import pixel_components  # noqa: E402
from vae_tools.latent.labels import hide_labels  # noqa: E402
from vae_tools.run_folder import load_run  # noqa: E402
from vae_tools.semi_supervised import dataset_pixels, propagate_labels  # noqa: E402
from vae_tools.training import train  # noqa: E402
from measure import peak_gib  # noqa: E402  (bench/, beside this script)
from cluster_features import clustering_by_seed  # noqa: E402  (bench/, beside this script)

SHARED = ROOT.parent / "shared" / "data"
FRACTION = 0.02
TARGETS = {"cpu": {"label_propagation": 0.45, "clustering": 0.30, "one_vs_rest": 0.70},
           "gpu_all_50000": {"label_propagation": 0.80, "clustering": 0.60, "one_vs_rest": 0.85}}


def first_per_class(dataset, n: int):
    labels = np.asarray(dataset.labels).astype(str)
    keep = np.sort(np.concatenate([np.flatnonzero(labels == c)[:n] for c in np.unique(labels)]))
    return dataset.subset(keep)


def label_propagation(dataset, model, seed, device, pixels, fraction=FRACTION) -> dict:
    y = np.asarray(dataset.labels).astype(str)
    keep = hide_labels(y, fraction, seed=seed)
    given = np.where(keep, y.astype(object), None)
    latents = latent_matrix(embed(model, dataset, device=device))
    started = time.perf_counter()
    result = propagate_labels(model, dataset, given, seed=seed, device=device, y_true=y, latents=latents,
                              progress=False)
    seconds = time.perf_counter() - started
    accuracy = float(np.mean(result.propagator.transduction_[~keep] == y[~keep]))
    started = time.perf_counter()
    # LabelSpreading wants numbers: the classes as indices, -1 for unlabelled.
    classes = np.unique(y)
    coded = np.where(keep, np.searchsorted(classes, y), -1)
    baseline = LabelSpreading(kernel="knn").fit(PCA(30, random_state=0).fit_transform(pixels), coded)
    base_seconds = time.perf_counter() - started
    base_accuracy = float(np.mean(classes[baseline.transduction_][~keep] == y[~keep]))
    return {"accuracy": accuracy, "seconds": round(seconds, 1), "features": result.features,
            "feature_cv_accuracy": result.feature_scores, "refinement_note": result.refinement_note,
            "rounds": result.rounds,  # time to accuracy: each round's held-back score, whether kept, seconds so far
            "baseline_accuracy": base_accuracy, "baseline_seconds": round(base_seconds, 1),
            "baseline": "PCA-30 + LabelSpreading(knn)", "peak_gib": peak_gib()}


def clustering(dataset, model, seed, device, pixels) -> dict:
    y = np.asarray(dataset.labels).astype(str)
    latents = latent_matrix(embed(model, dataset, device=device))
    started = time.perf_counter()
    out = clustering_by_seed(y, latents, pixel_components(pixels), [seed], model.preferred_features)
    return {**out, "seconds": round(time.perf_counter() - started, 1), "peak_gib": peak_gib()}


def one_vs_rest(dataset, seed, device, epochs=None, after_class=None) -> dict:
    """``after_class(per_class)``: called after each class (to save the rows so far)."""
    y = np.asarray(dataset.labels).astype(str)
    rng = np.random.default_rng(seed)
    held = np.zeros(len(y), dtype=bool)
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        held[rng.choice(members, len(members) // 5, replace=False)] = True
    test = dataset.subset(np.flatnonzero(held))
    test_pixels = dataset_pixels(test)
    per_class, started = {}, time.perf_counter()
    for c in np.unique(y):
        normal = dataset.subset(np.flatnonzero((y == c) & ~held))
        truth = (y[held] != c).astype(int)
        normal_pixels = dataset_pixels(normal)
        pca = PCA(30, random_state=0).fit(normal_pixels)
        pca_error = ((test_pixels - pca.inverse_transform(pca.transform(test_pixels))) ** 2).sum(1)
        class_started = time.perf_counter()
        trained = train(normal, TrainConfig(seed=seed, device=device, epochs=epochs), progress=False)
        train_seconds = time.perf_counter() - class_started
        detector = VAEAnomalyDetector(vae=trained.model, samples=16).fit(normal)
        parts = detector.score_parts(test)
        every = {name: float(roc_auc_score(truth, parts[name])) for name in parts.columns if name != "background"}
        per_class[c] = {"auroc": every[detector.score_], "score": detector.score_, "choices": detector.choices_,
                        "pca30_baseline": float(roc_auc_score(truth, pca_error)),
                        "every_score": every, "epochs": len(trained.history),
                        "train_seconds": round(train_seconds, 1),
                        "seconds": round(time.perf_counter() - class_started, 1)}
        print(f"  one-vs-rest {c}: {per_class[c]}", flush=True)
        if after_class is not None:
            after_class(per_class)
    mean = {k: float(np.mean([v[k] for v in per_class.values()])) for k in ("auroc", "pca30_baseline", "train_seconds")}
    mean["every_score"] = {name: float(np.mean([v["every_score"][name] for v in per_class.values()]))
                           for name in next(iter(per_class.values()))["every_score"]}
    return {"score": SCORE, "scores_used": sorted({v["score"] for v in per_class.values()}), "mean": mean, "per_class": per_class, "seconds": round(time.perf_counter() - started, 1),
            "training": "TrainConfig() defaults" if epochs is None else f"{epochs} epochs per class (a shorter budget "
                        "than the defaults')", "peak_gib": peak_gib()}


def trained_model(dataset, seed: int, args) -> tuple:
    """The seed's model: trained with the defaults, or loaded from --model-dir where an earlier run
    saved it (its training time then comes from that run's record)."""
    folder = Path(args.model_dir) / f"seed{seed}" if args.model_dir else None
    record = folder / "bench_training.json" if folder else None
    if record is not None and record.exists():
        model, _ = load_run(folder)
        return model, {**json.loads(record.read_text()), "loaded_from": str(folder)}
    started = time.perf_counter()
    trained = train(dataset, TrainConfig(seed=seed, device=args.device, epochs=args.epochs,
                                         budget_minutes=args.budget_minutes), out_dir=folder, progress=True)
    run = {"seed": seed, "model": trained.model.registry_name, "epochs": len(trained.history),
           "train_seconds": round(time.perf_counter() - started, 1), "train_peak_gib": peak_gib()}
    if folder is not None:
        run["image_size_choice"] = json.loads((folder / "config.json").read_text())["choices"].get("image_size")
    if record is not None:
        record.write_text(json.dumps(run) + "\n")
    return trained.model, run


def summary(runs: list, part: str, key: str) -> dict:
    values = [r[part][key] for r in runs if part in r]
    return {"mean": float(np.mean(values)), "std": float(np.std(values)), "values": values} if values else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(SHARED / "cifar10_train"))
    parser.add_argument("--per-class", type=int, default=5000, help="the first N images of each class")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--fraction", type=float, default=FRACTION, help="the share of images whose labels are given")
    parser.add_argument("--oneclass", action="store_true", help="also the one-vs-rest rows (ten trainings a seed)")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--epochs", type=int, default=None, help="only to try the script out: the defaults' length otherwise")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--budget-minutes", type=float, default=None,
                        help="another training budget than the photo model's own on a CPU (what a shorter or longer one reaches)")
    parser.add_argument("--oneclass-only", action="store_true",
                        help="only the one-vs-rest rows, into their own --out (no propagation or clustering)")
    parser.add_argument("--oneclass-epochs", type=int, default=None,
                        help="epochs per one-class model (default: the defaults' length, about 8 min a class here)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "photos.json"))
    parser.add_argument("--model-dir", default=None,
                        help="keep each seed's trained model in DIR/seedN and reuse it when there (to re-run the "
                             "latent steps without training again)")
    parser.add_argument("--append", action="store_true",
                        help="add these seeds to the runs already in --out (same data and settings)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    dataset = first_per_class(load_dataset(args.data), args.per_class)
    if not args.oneclass_only:  # large photos are read at the size each model was trained at, below
        dataset.load_into_memory(8 << 30) if max(dataset.image_size) <= 64 else None
    pixels = dataset_pixels(dataset) if args.oneclass_only else None
    report = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "threads": args.threads,
                          "torch": torch.__version__,
                          "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None},
              "data": {"source": args.data, "n_samples": len(dataset), "per_class": args.per_class},
              "settings": {"train": ("TrainConfig() defaults (model auto)" if args.budget_minutes is None else
                                     f"TrainConfig(budget_minutes={args.budget_minutes:g})") if args.epochs is None else
                           f"TrainConfig(epochs={args.epochs}): a try-out, not the defaults", "labelled_fraction": args.fraction},
              "targets": TARGETS, "runs": []}
    if args.oneclass_only:
        report["settings"]["oneclass_epochs"] = args.oneclass_epochs
    if args.append and Path(args.out).exists():
        earlier = json.loads(Path(args.out).read_text())
        if earlier["data"] != report["data"] or earlier["settings"] != report["settings"]:
            raise SystemExit(f"{args.out}: its runs used other data or settings; write another --out")
        report["runs"] = [r for r in earlier["runs"] if r["seed"] not in args.seeds]
    if args.oneclass_only:
        for seed in args.seeds:
            def save_so_far(per_class, seed=seed):
                partial = {"seed": seed, "complete": False, "classes_done": len(per_class), "per_class": per_class}
                Path(args.out).write_text(json.dumps({**report, "runs": report["runs"] + [partial]}, indent=2) + "\n")

            report["runs"].append({"seed": seed, "one_vs_rest": one_vs_rest(dataset, seed, args.device,
                                                                            args.oneclass_epochs, save_so_far)})
            means = [r["one_vs_rest"]["mean"] for r in report["runs"]]
            report["summary"] = {"one_vs_rest": {"mean": float(np.mean([m["auroc"] for m in means])),
                                                 "std": float(np.std([m["auroc"] for m in means])),
                                                 "pca30_baseline": float(np.mean([m["pca30_baseline"] for m in means]))}}
            Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.out}")
        return
    for seed in args.seeds:
        model, run = trained_model(dataset, seed, args)
        device = next(model.parameters()).device
        print(f"seed {seed}: {run['model']} model, {run['epochs']} epochs in {run['train_seconds']}s", flush=True)
        # The model's working size: its images, and the baseline's pixels, are read at it.
        working = dataset if tuple(dataset.image_size) == tuple(model.image_shape[1:]) else \
            dataset.at_size(model.image_shape[1:])
        working.load_into_memory(8 << 30)
        pixels = dataset_pixels(working)
        run["image_size"] = list(model.image_shape[1:])
        run["label_propagation"] = label_propagation(working, model, seed, device, pixels, args.fraction)
        print(f"  propagation {run['label_propagation']['accuracy']:.4f} vs baseline "
              f"{run['label_propagation']['baseline_accuracy']:.4f}", flush=True)
        run["clustering"] = clustering(working, model, seed, device, pixels)
        cluster_summary = run["clustering"]["summary"]
        print(f"  clustering {cluster_summary['accuracy']['mean']:.4f} vs baseline "
              f"{cluster_summary['baseline_kmeans_pca50']['mean']:.4f}", flush=True)
        if args.oneclass:
            run["one_vs_rest"] = one_vs_rest(dataset, seed, args.device, args.oneclass_epochs)
        report["runs"].append(run)
        report["summary"] = {
            "label_propagation": summary(report["runs"], "label_propagation", "accuracy"),
            "label_propagation_baseline": summary(report["runs"], "label_propagation", "baseline_accuracy"),
            "clustering": {"mean": float(np.mean([r["clustering"]["summary"]["accuracy"]["mean"] for r in report["runs"]])),
                           "baseline": float(np.mean([r["clustering"]["summary"]["baseline_kmeans_pca50"]["mean"]
                                                      for r in report["runs"]]))},
            "train_seconds": {"mean": float(np.mean([r["train_seconds"] for r in report["runs"]]))},
        }
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
