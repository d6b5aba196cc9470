"""How long `vaetools --help` and `vaetools COMMAND --help` take, beside a bare `python -c pass` in the
same run (the interpreter's own start-up, which no CLI can beat). Target: under 0.5 s.

    python bench/startup.py [--repeats 10]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = {
    "python -c pass (baseline)": [sys.executable, "-c", "pass"],
    "vaetools --help": [sys.executable, "-m", "vaetools_pipelines.cli", "--help"],
    "vaetools train --help": [sys.executable, "-m", "vaetools_pipelines.cli", "train", "--help"],
    "vaetools label-propagate --help": [sys.executable, "-m", "vaetools_pipelines.cli", "label-propagate", "--help"],
}


def wall_times(command: list, repeats: int) -> list:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "startup.json"))
    args = parser.parse_args()
    results = {}
    for name, command in CASES.items():
        times = wall_times(command, args.repeats)
        results[name] = {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times)}
        print(f"{name}: median {results[name]['median_s']:.3f} s (min {min(times):.3f}, max {max(times):.3f})")
    report = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count()}, "repeats": args.repeats,
              "target_s": 0.5, "results": results}
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
