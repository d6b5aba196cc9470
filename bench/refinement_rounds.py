"""What do refinement rounds do when the labels are few, and can the held-back labels tell?

    python bench/refinement_rounds.py [--data digits] [--fraction 0.05] [--seeds 0 1 ... 9]

Runs `propagate_labels` with the guard switched off (every round kept, whatever the held-back labels
say) on a VAE trained with the defaults, and records for each round its held-back score and its
true accuracy on the unlabelled. From those it replays the guard (a round is kept only if it gets
strictly more held-back labels right) as it would judge with only OLD_MIN_JUDGING labels needed and
as it does with MIN_JUDGING_LABELS: what each would have ended with, against round 0. This is the
evidence for MIN_JUDGING_LABELS in vae_tools/latent/defaults.py.

Each round is judged by cross-fitting: every given label is held back from one of the
JUDGE_FOLDS fold lines, so `held_back` is the number of given labels (90 on digits at 5%) and
`held_back_correct` the sum over the folds.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import vae_tools.semi_supervised as semi  # noqa: E402
from vae_tools.atomic import write_json  # noqa: E402
from vae_tools.config import TrainConfig  # noqa: E402
from vae_tools.data import load_dataset  # noqa: E402
from vae_tools.latent.defaults import MIN_JUDGING_LABELS  # noqa: E402
from vae_tools.latent.labels import hide_labels  # noqa: E402
from vae_tools.training import train  # noqa: E402

OLD_MIN_JUDGING = 10


def guarded(rounds: list, min_judging: int) -> dict:
    """The round the guard would end on: rounds are kept while each gets strictly more held-back
    labels right than the last kept one; none when too few judge them."""
    kept = rounds[0]
    if rounds[0]["held_back"] >= min_judging:
        for trial in rounds[1:]:
            if trial["held_back_correct"] <= kept["held_back_correct"]:
                break
            kept = trial
    return kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="digits")
    parser.add_argument("--fraction", type=float, default=0.05)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(10)))
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "refinement_rounds.json"))
    args = parser.parse_args()

    dataset = load_dataset(args.data)
    y = dataset.labels
    model = train(dataset, TrainConfig(device="cpu"), progress=False).model
    semi.MIN_JUDGING_LABELS = 1  # never skip, and keep every round, so that each one's effect is seen
    semi.HeldBackScore.beats = lambda self, other: True
    runs = []
    for seed in args.seeds:
        keep = hide_labels(y, args.fraction, seed=seed)
        result = semi.propagate_labels(model, dataset, np.where(keep, y, -1), seed=seed, y_true=y, progress=False)
        rounds = [{k: r[k] for k in ("round", "held_back", "held_back_correct", "accuracy_unlabelled")}
                  for r in result.rounds]
        round0 = rounds[0]["accuracy_unlabelled"]
        run = {"seed": seed, "rounds": rounds,
               "old_guard_change": guarded(rounds, OLD_MIN_JUDGING)["accuracy_unlabelled"] - round0,
               "guard_change": guarded(rounds, MIN_JUDGING_LABELS)["accuracy_unlabelled"] - round0}
        runs.append(run)
        print(f"seed {seed}: " + ", ".join(f"round {r['round']} {r['held_back_correct']}/{r['held_back']} held back, "
                                            f"{r['accuracy_unlabelled']:.4f}" for r in rounds)
              + f"; old guard {run['old_guard_change']:+.4f}, guard {run['guard_change']:+.4f}", flush=True)

    def change(r, i):
        return r["rounds"][i]["accuracy_unlabelled"] - r["rounds"][0]["accuracy_unlabelled"]

    summary = {f"round_{i}_change": {"mean": float(np.mean([change(r, i) for r in runs])),
                                     "min": float(min(change(r, i) for r in runs)),
                                     "max": float(max(change(r, i) for r in runs))}
               for i in range(1, len(runs[0]["rounds"]))}
    for name in ("old_guard_change", "guard_change"):
        values = [r[name] for r in runs]
        summary[name] = {"mean": float(np.mean(values)), "min": float(min(values)),
                         "below_round_0": int(sum(v < 0 for v in values))}
    report = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__},
              "data": args.data, "labelled_fraction": args.fraction, "min_judging_labels": MIN_JUDGING_LABELS,
              "old_min_judging": OLD_MIN_JUDGING, "summary": summary, "runs": runs}
    write_json(args.out, report)
    print(summary)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
