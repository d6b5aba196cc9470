"""Is averaging several UMAP maps worth its cost, and where? Label spreading over one 10-d UMAP map
against the average of the label distributions over N maps of other seeds, on the same latents and
the same labels (round 0 of `propagate_labels`, no refinement), on each data set of generalise.py.

    python bench/map_ensemble.py [--data digits kmnist mnist] [--maps 5] [--model kmnist=RUN ...]

The features are latents + 50 principal components of the pixels (the set the cross-validation kept
on all three data sets in generalise.py). A VAE is trained with `vaetools train`'s defaults unless
`--model NAME=RUN` names a run folder to use. The single maps are the baseline of each row: their
mean, their spread (how much a map's seed alone moves a result), and the ensemble of all of them.
This is what `--maps auto` rests on: it averages 5 maps up to ENSEMBLE_LIMIT samples, 1 beyond.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vae_tools.atomic import write_json  # noqa: E402
from vae_tools.config import TrainConfig  # noqa: E402
from vae_tools.data import load_dataset  # noqa: E402
from vae_tools.embedding import embed, latent_matrix  # noqa: E402
from vae_tools.latent.defaults import ENSEMBLE_LIMIT, ENSEMBLE_MAPS  # noqa: E402
from vae_tools.latent.features import GRAPH_COMPONENTS, feature_matrix, pixel_components  # noqa: E402
from vae_tools.latent.reducers import reduced  # noqa: E402
from vae_tools.latent.labels import hide_labels  # noqa: E402
from vae_tools.latent.propagation import LabelPropagator  # noqa: E402
from vae_tools.run_folder import load_run  # noqa: E402
from vae_tools.semi_supervised import dataset_pixels  # noqa: E402
from vae_tools.training import train  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
# name: (source, labelled fractions) -- the fractions of generalise.py and label_propagation.py.
DATASETS = {
    "digits": ("digits", (0.05,)),
    "kmnist": (str(SHARED / "kmnist_test.npz"), (0.02,)),
    "mnist": (str(SHARED / "mnist.npz"), (0.01, 0.02)),
}
MAP_SEEDS_FROM = 100  # apart from the label seeds, so that no map shares a seed with a label draw


def trained_model(name: str, dataset, models: dict, device: str):
    if name in models:
        model, _ = load_run(models[name], device)
        return model, {"model": models[name]}
    started = time.perf_counter()
    result = train(dataset, TrainConfig(device=device), progress=False)
    return result.model, {"train_seconds": round(time.perf_counter() - started, 1), "epochs": len(result.history)}


def compare(y, maps, fraction, seed) -> dict:
    keep = hide_labels(y, fraction, seed=seed)
    given = np.where(keep, y, -1)
    fitted = [LabelPropagator(reduce="none", random_state=seed).fit(m, given) for m in maps]
    singles = [float(np.mean(f.transduction_[~keep] == y[~keep])) for f in fitted]
    averaged = np.mean([f.label_distributions_ for f in fitted], axis=0)
    ensemble = float(np.mean(fitted[0].classes_[averaged.argmax(1)][~keep] == y[~keep]))
    return {"seed": seed, "single_maps": singles, "single_mean": float(np.mean(singles)),
            "single_range": float(np.ptp(singles)), "ensemble": ensemble,
            "gain_over_single_mean": ensemble - float(np.mean(singles))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--maps", type=int, default=ENSEMBLE_MAPS)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--model", action="append", default=[], metavar="NAME=RUN",
                        help="use this run folder for data set NAME instead of training one")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "map_ensemble.json"))
    args = parser.parse_args()
    models = dict(item.split("=", 1) for item in args.model)

    report = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__},
              "maps": args.maps, "auto_rule": f"{ENSEMBLE_MAPS} maps up to {ENSEMBLE_LIMIT} samples, 1 beyond",
              "features": "latents+pixels", "data": {}}
    for name in args.data:
        source, fractions = DATASETS[name]
        dataset = load_dataset(source)
        y = dataset.labels.astype(int)
        model, model_info = trained_model(name, dataset, models, args.device)
        latents = latent_matrix(embed(model, dataset, device=args.device, progress=False))
        features = feature_matrix("latents+pixels", latents, pixel_components(dataset_pixels(dataset)))
        maps, seconds = [], []
        for i in range(args.maps):
            started = time.perf_counter()
            maps.append(reduced(features, "umap", GRAPH_COMPONENTS, seed=MAP_SEEDS_FROM + i))
            seconds.append(time.perf_counter() - started)
        entry = {"n_samples": len(dataset), **model_info, "seconds_per_map": round(float(np.median(seconds)), 1),
                 "fractions": {}}
        for fraction in fractions:
            runs = [compare(y, maps, fraction, seed) for seed in args.seeds]
            gains = [r["gain_over_single_mean"] for r in runs]
            entry["fractions"][str(fraction)] = {
                "runs": runs, "single_mean": float(np.mean([r["single_mean"] for r in runs])),
                "ensemble_mean": float(np.mean([r["ensemble"] for r in runs])),
                "ensemble_std": float(np.std([r["ensemble"] for r in runs])),
                "gain_mean": float(np.mean(gains)), "gain_std": float(np.std(gains)),
                "single_range_mean": float(np.mean([r["single_range"] for r in runs]))}
            summary = entry["fractions"][str(fraction)]
            print(f"{name} {fraction:.0%}: one map {summary['single_mean']:.4f} (seeds of the map move it by "
                  f"{summary['single_range_mean']:.4f}), {args.maps} maps {summary['ensemble_mean']:.4f}: "
                  f"{summary['gain_mean']:+.4f} ±{summary['gain_std']:.4f}; {entry['seconds_per_map']}s a map",
                  flush=True)
        report["data"][name] = entry
        write_json(args.out, report)  # after each data set, so that a long run keeps what it measured
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
