"""Few labels, all labels: vaetools' label propagation on all 70,000 MNIST images.

For seeds 0, 1, 2 and 1% / 2% of the labels kept (the rest hidden), reports the accuracy on the
unlabelled images of
  - the baseline: PCA-50 of the pixels + scikit-learn LabelSpreading (knn kernel), and
  - vaetools with its defaults: a conv VAE trained on all images (no labels), label spreading over
    the UMAP-weighted neighbour graph of its latents, then two rounds of self-training refinement
    (round 0 is plain propagation on the VAE's latents, also reported);
plus clustering accuracy / NMI / ARI without labels (GMM and k-means on a UMAP map of the latents),
wall time of each step on this machine, and propagation on 1,000,000 synthetic latents (time and
peak memory, in a separate process).

    python bench/label_propagation.py [--epochs N] [--seeds 0 1 2] [--data ../shared/data/mnist.npz]

A fraction not run this time (--fractions) is carried over from the file being overwritten, marked
as such, with its baseline. With --model, a seed not run this time for a fraction that is run is
carried over too when the earlier file used the same run folder (its runs are marked); the baseline
is then run for every seed of that fraction, so that both sides average the same seeds.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vae_tools.config import TrainConfig  # noqa: E402
from vae_tools.data import load_dataset  # noqa: E402
from vae_tools.embedding import embed, latent_matrix  # noqa: E402
from vae_tools.device import resolve_device  # noqa: E402
from vae_tools.latent import LabelPropagator, LatentClusterer, cluster_scores, hide_labels  # noqa: E402
from vae_tools.run_folder import load_run  # noqa: E402
from vae_tools.semi_supervised import propagate_labels  # noqa: E402
from vae_tools.training import train  # noqa: E402
from measure import peak_gib, time_to_accuracy  # noqa: E402  (bench/, beside this script)

FRACTIONS = (0.01, 0.02)
REFINEMENT_DEFAULTS = {name: parameter.default for name, parameter in inspect.signature(propagate_labels).parameters.items()
                       if name in ("budget", "refinement", "refine_rounds", "refine_epochs")}


def baseline(images: np.ndarray, y: np.ndarray, seeds_by_fraction: dict) -> dict:
    from sklearn.decomposition import PCA
    from sklearn.semi_supervised import LabelSpreading

    started = time.perf_counter()
    features = PCA(50, random_state=0).fit_transform(images.reshape(len(images), -1))
    pca_seconds = time.perf_counter() - started
    results = {"pca_seconds": round(pca_seconds, 1)}
    for fraction, seeds in seeds_by_fraction.items():
        accs, times = [], []
        for seed in seeds:
            keep = hide_labels(y, fraction, seed=seed)
            started = time.perf_counter()
            model = LabelSpreading(kernel="knn", n_neighbors=10, max_iter=100).fit(features, np.where(keep, y, -1))
            times.append(time.perf_counter() - started)
            accs.append(float(np.mean(model.transduction_[~keep] == y[~keep])))
            print(f"  baseline {fraction:.0%} seed {seed}: {accs[-1]:.4f} ({times[-1]:.1f}s)", flush=True)
        results[str(fraction)] = {"accuracy_per_seed": accs, "accuracy_mean": float(np.mean(accs)),
                                  "seconds_mean": round(float(np.mean(times)), 1)}
    return results


def earlier_seed_runs(previous: dict, model: str | None, seeds, fractions) -> dict:
    """Per fraction, the earlier file's runs of seeds not in ``seeds``, when they used the same run folder."""
    if not model or previous.get("settings", {}).get("vae", {}).get("run_folder") != model:
        return {}
    out = {}
    for fraction in fractions:
        runs = previous.get("vaetools", {}).get(str(fraction), {}).get("runs", [])
        carried = [{**run, "carried_over": "from the previous run of this file (same --model)"}
                   for run in runs if run["seed"] not in seeds]
        if carried:
            out[str(fraction)] = carried
    return out


def synthetic_million(n: int = 1_000_000) -> dict:
    """Run in a child process so its peak resident memory is its own."""
    code = f"""
import json, resource, time, numpy as np
from vae_tools.latent import LabelPropagator, hide_labels
rng = np.random.default_rng(0)
centres = rng.normal(scale=3.0, size=(10, 16)).astype(np.float32)
y = rng.integers(0, 10, size={n})
x = centres[y] + rng.normal(size=({n}, 16)).astype(np.float32)
keep = hide_labels(y, 0.01, seed=0)
started = time.perf_counter()
model = LabelPropagator().fit(x, np.where(keep, y, -1))
seconds = time.perf_counter() - started
print(json.dumps({{"n": {n}, "seconds": round(seconds, 1), "accuracy_unlabelled": float(np.mean(model.transduction_[~keep] == y[~keep])),
                  "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)}}))
"""
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root,
                         env={**os.environ, "PYTHONPATH": str(root)})
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "failed"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist.npz"))
    parser.add_argument("--epochs", type=int, default=None,
                        help="training epochs (default: the README's, enough for 3000 steps and at least 30, with early stopping)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--fractions", type=float, nargs="+", default=list(FRACTIONS))
    parser.add_argument("--model", help="a run folder to use instead of training a VAE here (its training time is then not measured)")
    parser.add_argument("--skip-clustering", action="store_true")
    parser.add_argument("--budget", default=REFINEMENT_DEFAULTS["budget"], help="label-propagate's --budget")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--skip-million", action="store_true")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "label_propagation.json"))
    args = parser.parse_args()
    previous = json.loads(Path(args.out).read_text()) if Path(args.out).exists() else {}
    torch.manual_seed(0)
    timings = {}
    fractions = args.fractions

    dataset = load_dataset(args.data)
    y = dataset.labels.astype(int)
    print(f"{len(dataset)} images", flush=True)

    earlier = earlier_seed_runs(previous, args.model, args.seeds, fractions)
    print("baseline: PCA-50 + LabelSpreading", flush=True)
    images = dataset.batch(np.arange(len(dataset))).numpy()
    seeds_by_fraction = {fraction: sorted(set(args.seeds) | {run["seed"] for run in earlier.get(str(fraction), [])})
                         for fraction in fractions}
    base = baseline(images, y, seeds_by_fraction)
    del images

    if args.model:
        model, run_config = load_run(args.model, resolve_device(args.device))
        vae_settings = {**run_config["training"], "run_folder": args.model}
        print(f"using the VAE in {args.model}", flush=True)
    else:
        started = time.perf_counter()
        config = TrainConfig(epochs=args.epochs, device=args.device, seed=0)
        result = train(dataset, config, progress=False)
        timings["train_vae_seconds"] = round(time.perf_counter() - started, 1)
        model = result.model
        vae_settings = config.to_dict()
        print(f"trained {len(result.history)} epochs in {timings['train_vae_seconds']}s", flush=True)
    device = next(model.parameters()).device

    started = time.perf_counter()
    latents = latent_matrix(embed(model, dataset, device=device))
    timings["embed_seconds"] = round(time.perf_counter() - started, 1)

    # Propagation alone on 70,000 latents: the first call in a process includes numba's compile of
    # UMAP's graph code; later calls are the steady state.
    keep = hide_labels(y, 0.01, seed=0)
    for name in ("propagation_first_call_seconds", "propagation_seconds"):
        started = time.perf_counter()
        LabelPropagator().fit(latents, np.where(keep, y, -1))
        timings[name] = round(time.perf_counter() - started, 1)
    print(f"propagation on {len(latents)} latents: {timings['propagation_seconds']}s "
          f"(first call {timings['propagation_first_call_seconds']}s)", flush=True)

    ours = {}
    for fraction in fractions:
        per_seed = []
        for seed in args.seeds:
            keep = hide_labels(y, fraction, seed=seed)
            started = time.perf_counter()
            run = propagate_labels(model, dataset, np.where(keep, y, -1), LabelPropagator(random_state=seed),
                                   budget=args.budget, device=device, seed=seed, progress=False, y_true=y)
            seconds = time.perf_counter() - started
            per_seed.append({"seed": seed, "rounds": run.rounds, "seconds": round(seconds, 1),
                             "time_to_accuracy": time_to_accuracy(run.rounds),
                             "peak_rss_gib_so_far": peak_gib()})
            per_seed[-1].update(features=run.features, feature_cv_accuracy=run.feature_scores,
                                refinement_note=run.refinement_note)
            print(f"  vaetools {fraction:.0%} seed {seed} ({run.features}): " + ", ".join(
                f"round {r['round']} {r['accuracy_unlabelled']:.4f}{'' if r['accepted'] else ' (dropped)'}"
                for r in run.rounds) + f" ({seconds:.0f}s)", flush=True)
        per_seed = sorted(per_seed + earlier.get(str(fraction), []), key=lambda s: s["seed"])
        final = [[r for r in s["rounds"] if r["accepted"]][-1]["accuracy_unlabelled"] for s in per_seed]
        plain = [s["rounds"][0]["accuracy_unlabelled"] for s in per_seed]
        ours[str(fraction)] = {"accuracy_mean": float(np.mean(final)), "accuracy_per_seed": final,
                               "round0_accuracy_mean": float(np.mean(plain)),
                               "seconds_mean": round(float(np.mean([s["seconds"] for s in per_seed])), 1),
                               "runs": per_seed}

    for key, entry in previous.get("vaetools", {}).items():
        if key not in ours:
            ours[key] = {**entry, "carried_over": "from the previous run of this file (not in this run's --fractions)"}
            base[key] = previous["baseline_pca50_labelspreading"][key]

    clustering = {}
    for method in () if args.skip_clustering else ("gmm", "kmeans"):
        started = time.perf_counter()
        clusterer = LatentClusterer(method=method, n_clusters=10, random_state=0).fit(latents)
        clustering[method] = {**cluster_scores(y, clusterer.labels_), "seconds": round(time.perf_counter() - started, 1)}
        print(f"clustering {method}: {clustering[method]}", flush=True)
    if not args.skip_clustering:
        started = time.perf_counter()
        raw = LatentClusterer(method="kmeans", n_clusters=10, reduce="none", random_state=0).fit(latents)
        clustering["kmeans_no_umap"] = {**cluster_scores(y, raw.labels_), "seconds": round(time.perf_counter() - started, 1)}

    if not args.skip_million:
        million = synthetic_million()
    elif previous.get("synthetic_1m"):
        million = {**previous["synthetic_1m"], "carried_over": "from the previous run of this file (--skip-million)"}
    else:
        million = {}
    print(f"1,000,000 synthetic latents: {million}", flush=True)

    report = {
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count(),
                    "torch": torch.__version__, "device": str(device)},
        "data": {"source": args.data, "n": len(dataset)},
        "settings": {"vae": vae_settings, "seeds": args.seeds, "fractions": fractions,
                     "propagation": {**LabelPropagator().get_params(), **REFINEMENT_DEFAULTS, "budget": args.budget}},
        "baseline_pca50_labelspreading": base,
        "vaetools": ours,
        "ratio_vs_baseline": {key: ours[key]["accuracy_mean"] / base[key]["accuracy_mean"] for key in ours},
        "targets": {"0.01": 0.98, "0.02": 0.985, "clustering_accuracy": 0.95},
        "clustering": clustering,
        "timings": timings,
        "synthetic_1m": million,
        "peak_rss_gib_this_process": peak_gib(),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    for f in fractions:
        print(f"{f:.0%} labels: vaetools {ours[str(f)]['accuracy_mean']:.4f} (round 0 {ours[str(f)]['round0_accuracy_mean']:.4f})"
              f" vs baseline {base[str(f)]['accuracy_mean']:.4f}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
