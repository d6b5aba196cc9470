"""Same-run check of the bf16 training default against fp32: does training in bf16 change what the
latents are good for? (vae_tools/training/precision.py picks bf16 on CPUs that have it natively.)

    python bench/precision.py --part mnist    # MNIST 70k, VAE seed 0: training time, validation -ELBO,
                                              # GMM and k-means on the UMAP map of the latents, 3 seeds each
    python bench/precision.py --part kmnist   # KMNIST-10k, VAE seeds 0 and 1: `vaetools cluster`'s
                                              # default (features auto) and the latents alone, 3 seeds each
    python bench/precision.py --part kmnist --vae-seeds 2 3 4 --append   # more VAE seeds into the same file

Run on a CPU with native bf16 (elsewhere both rows are fp32). Data come from ../shared/data.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vae_tools.config import TrainConfig  # noqa: E402
from vae_tools.data import load_dataset  # noqa: E402
from vae_tools.embedding import embed, latent_matrix  # noqa: E402
from vae_tools.latent import LatentClusterer, cluster_scores  # noqa: E402
from vae_tools.latent.features import pixel_components  # noqa: E402
from vae_tools.semi_supervised import dataset_pixels  # noqa: E402
from vae_tools.training import train  # noqa: E402
from cluster_features import clustering_by_seed  # noqa: E402  (bench/, beside this script)
from measure import peak_gib  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
PRECISIONS = (("bf16", None), ("fp32", False))  # amp unset: the default's choice; amp false: fp32


def mnist() -> dict:
    data = load_dataset(str(SHARED / "mnist.npz"))
    out = {}
    for name, amp in PRECISIONS:
        started = time.perf_counter()
        result = train(data, TrainConfig(amp=amp), progress=False)
        rows = {"train_seconds": round(time.perf_counter() - started, 1),
                "best_val_neg_elbo": min(r["val_loss"] for r in result.history)}
        latents = latent_matrix(embed(result.model, data))
        for method in ("gmm", "kmeans"):
            rows[method] = [round(cluster_scores(data.labels, LatentClusterer(n_clusters=10, method=method, random_state=s)
                                                 .fit(latents).labels_)["accuracy"], 4) for s in (0, 1, 2)]
        out[name] = {**rows, "peak_gib_so_far": peak_gib()}
        print(name, out[name], flush=True)
    return out


def kmnist(vae_seeds: list) -> dict:
    data = load_dataset(str(SHARED / "kmnist_test.npz"))
    pixels = pixel_components(dataset_pixels(data))
    out = {}
    for vae_seed in vae_seeds:
        for name, amp in PRECISIONS:
            model = train(data, TrainConfig(amp=amp, seed=vae_seed), progress=False).model
            summary = clustering_by_seed(data.labels, latent_matrix(embed(model, data)), pixels, [0, 1, 2])["summary"]
            out[f"{name}_vae{vae_seed}"] = {"auto": summary["accuracy"]["mean"], "latents": summary["always_latents"]["mean"]}
            print(name, vae_seed, out[f"{name}_vae{vae_seed}"], flush=True)
    return out


def kmnist_summary(rows: dict) -> dict:
    """Per precision, the mean and spread over VAE seeds of the clustering accuracy, and the paired
    differences (bf16 - fp32) seed by seed."""
    import numpy as np

    seeds = sorted({int(k.split("_vae")[1]) for k in rows if "_vae" in k})
    paired = [s for s in seeds if f"bf16_vae{s}" in rows and f"fp32_vae{s}" in rows]
    summary = {"vae_seeds": paired}
    for column in ("auto", "latents"):
        for name, _ in PRECISIONS:
            values = [rows[f"{name}_vae{s}"][column] for s in paired]
            summary[f"{name}_{column}"] = {"mean": round(float(np.mean(values)), 4), "std": round(float(np.std(values)), 4)}
        diffs = [rows[f"bf16_vae{s}"][column] - rows[f"fp32_vae{s}"][column] for s in paired]
        summary[f"bf16_minus_fp32_{column}"] = {"mean": round(float(np.mean(diffs)), 4),
                                                "std": round(float(np.std(diffs)), 4),
                                                "bf16_lower_on": sum(d < 0 for d in diffs)}
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=("mnist", "kmnist"), required=True)
    parser.add_argument("--vae-seeds", type=int, nargs="+", default=[0, 1], help="kmnist: the VAEs trained per precision")
    parser.add_argument("--append", action="store_true", help="add the rows to those already in --out")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    out = Path(args.out or ROOT / "bench" / "results" / f"precision_{args.part}.json")
    result = json.loads(out.read_text()) if args.append and out.exists() else {}
    result.update(mnist() if args.part == "mnist" else kmnist(args.vae_seeds))
    if args.part == "kmnist":
        result["summary"] = kmnist_summary(result)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
