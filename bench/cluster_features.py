"""Which features should clustering use? The latents, the pixels or both, on several data sets, and
what `features="auto"` (the highest silhouette, no labels) picks, over several UMAP seeds.

    python bench/cluster_features.py [--data digits kmnist mnist] [--model kmnist=RUN_FOLDER ...] [--seeds 0 1 2]

For each data set and seed: k-means (the `LatentClusterer` default) on a 10-d UMAP map of each
candidate feature set, its clustering accuracy and its silhouette; the set auto keeps and its
accuracy; and the baseline, k-means on PCA-50 of the pixels, in the same run. A VAE is trained with
`vaetools train`'s defaults on all the images unless --model names a run folder for that data set.
Data: digits ships with scikit-learn; KMNIST and MNIST come from ../shared/data (not part of the
product). No setting is chosen per data set.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vae_tools.config import TrainConfig  # noqa: E402
from vae_tools.data import load_dataset  # noqa: E402
from vae_tools.device import resolve_device  # noqa: E402
from vae_tools.embedding import embed, latent_matrix  # noqa: E402
from vae_tools.latent.cluster_features import cluster_with_features  # noqa: E402
from vae_tools.latent.clustering import LatentClusterer, cluster_scores  # noqa: E402
from vae_tools.latent.features import pixel_components  # noqa: E402
from vae_tools.run_folder import load_run  # noqa: E402
from vae_tools.semi_supervised import dataset_pixels  # noqa: E402
from vae_tools.training import train  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
SOURCES = {"digits": "digits", "kmnist": str(SHARED / "kmnist_test.npz"), "mnist": str(SHARED / "mnist.npz")}


def clustering_by_seed(y: np.ndarray, latents: np.ndarray, pixels: np.ndarray, seeds, model_choice=None) -> dict:
    """The default clustering (features auto) for each seed, with every candidate's accuracy and the
    k-means-on-PCA-50 baseline; means and spreads over the seeds. ``model_choice``: the model's
    ``cluster_features``, which auto keeps (without it, auto is the silhouette's pick). Every
    candidate is fitted either way, so that each row shows what the other sets and the silhouette
    would have given."""
    n_classes = len(np.unique(y))
    runs = []
    for seed in seeds:
        started = time.perf_counter()
        every = cluster_with_features(LatentClusterer(n_clusters=n_classes, random_state=seed), latents, pixels,
                                      seed=seed)
        candidates = {name: {"accuracy": cluster_scores(y, fitted.labels_)["accuracy"],
                             "silhouette": every.silhouettes[name]} for name, fitted in every.candidates.items()}
        seconds = time.perf_counter() - started
        chosen = model_choice[0] if model_choice else every.features
        fitted = every.candidates[chosen]
        started = time.perf_counter()
        base = KMeans(n_classes, n_init=10, random_state=seed).fit_predict(pixels)
        runs.append({"seed": seed, "features": chosen, "silhouette_pick": every.features,
                     "silhouette_pick_accuracy": candidates[every.features]["accuracy"],
                     **cluster_scores(y, fitted.labels_),
                     "candidates": candidates, "baseline_kmeans_pca50": cluster_scores(y, base)["accuracy"],
                     "seconds": round(seconds, 1), "baseline_seconds": round(time.perf_counter() - started, 1)})
        print(f"  seed {seed}: auto -> {chosen} {runs[-1]['accuracy']:.4f}; "
              + ", ".join(f"{k} {v['accuracy']:.4f} (silhouette {v['silhouette']:.3f})" for k, v in candidates.items())
              + f"; baseline {runs[-1]['baseline_kmeans_pca50']:.4f}", flush=True)
    summary = {"accuracy": spread([r["accuracy"] for r in runs]),
               "baseline_kmeans_pca50": spread([r["baseline_kmeans_pca50"] for r in runs]),
               "nmi": spread([r["nmi"] for r in runs])}
    for name in runs[0]["candidates"]:
        summary[f"always_{name}"] = spread([r["candidates"][name]["accuracy"] for r in runs])
    return {"runs": runs, "summary": summary}


def spread(values) -> dict:
    return {"mean": float(np.mean(values)), "std": float(np.std(values)), "min": float(np.min(values)),
            "max": float(np.max(values))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="+", default=list(SOURCES), choices=list(SOURCES))
    parser.add_argument("--model", nargs="*", default=[], metavar="NAME=RUN_FOLDER")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "cluster_features.json"))
    args = parser.parse_args()
    run_folders = dict(item.split("=", 1) for item in args.model)
    device = resolve_device(args.device)
    report = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__},
              "settings": {"clusterer": "LatentClusterer defaults (k-means on a 10-d UMAP map, min_dist 0)",
                           "features": "auto: highest mean silhouette on its map", "seeds": args.seeds},
              "data": {}}
    for name in args.data:
        dataset = load_dataset(SOURCES[name])
        if name in run_folders:
            model, _ = load_run(run_folders[name], device)
            vae = {"run_folder": run_folders[name]}
        else:
            started = time.perf_counter()
            model = train(dataset, TrainConfig(device=args.device), progress=False).model
            vae = {"trained_here_seconds": round(time.perf_counter() - started, 1), "settings": "TrainConfig()"}
        print(f"{name}: {len(dataset)} images", flush=True)
        latents = latent_matrix(embed(model, dataset, device=device))
        pixels = pixel_components(dataset_pixels(dataset))
        report["data"][name] = {"n_samples": len(dataset), "vae": vae,
                                **clustering_by_seed(dataset.labels, latents, pixels, args.seeds, model.preferred_features)}
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
