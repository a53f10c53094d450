"""Wall time of ``markovfork fit`` (with ``--counts``) on the committed bridge sweep (target: under 60 s on the 2-core
machine), its simulator evaluations and the time per evaluation; with ``--heldout``, the held-out
table of docs/fit.md (every rho left out in turn, then epochs <= 4 fitted and 5-12 predicted).

    python benchmarks/fit_speed.py [--heldout]

Each row is a fresh ``python -m markovfork.cli fit ... --json`` subprocess (interpreter start-up,
imports and the Numba cache load count). The held-out runs add the no-fork fit and the
beta-binomial baseline from the per-problem counts.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "docs" / "examples"
BASE = ["fit", str(EXAMPLES / "bridge_sweep_results.parquet"), "--config", str(EXAMPLES / "bridge-sweep.toml"), "--json"]
COUNTS = ["--counts", str(EXAMPLES / "bridge_sweep_counts.parquet")]


def run_fit(extra: list[str]) -> tuple[dict, float]:
    env = os.environ | {"OPENBLAS_NUM_THREADS": "1"}
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "markovfork.cli", *BASE, *extra], capture_output=True, text=True,
                         env=env, cwd=ROOT, check=True)
    return json.loads(out.stdout), time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--heldout", action="store_true", help="also run the held-out settings (several minutes)")
    args = ap.parse_args()
    doc, wall = run_fit(COUNTS)  # with the base counts: the per-problem base skill (issue 20)
    print(f"markovfork fit (whole sweep): {wall:.1f} s wall, {doc['evaluations']} simulator evaluations at "
          f"{doc['seconds_per_evaluation']:.3f} s, fit {doc['fit_seconds']:.1f} s, reduced chi2 {doc['reduced_chi2']:.2f}, "
          f"train RMSE {doc['train_fit']['rmse']:.4f}")
    print("  " + ", ".join(f"{n} {p['value']:.4g}" for n, p in doc["parameters"].items())
          + (f" (at bound: {doc['at_bound']})" if doc["at_bound"] else ""))
    if not args.heldout:
        return
    settings = [(f"rho {r} out", ["--predict-rho", r]) for r in ("0", "0.25", "0.5", "0.75", "1")]
    settings.append(("epochs 5-12 from <= 4", ["--train-until-epoch", "4"]))
    print("\n| held out | simulator RMSE / max | baseline (a) RMSE / max | no fork (b) RMSE / max "
          "| k 16, 32: simulator / (a) / beta-binomial (c) RMSE | count TV, W1 | wall |")
    print("|---|---|---|---|---|---|---:|")
    for name, extra in settings:
        doc, wall = run_fit([*extra, *COUNTS])
        h = doc["held_out"]
        e = h["errors"]
        base = e.get("interpolation") or e["persistence"]
        lk = h["large_k"]
        print(f"| {name} | {e['simulator']['rmse']:.3f} / {e['simulator']['max']:.3f} | {base['rmse']:.3f} / "
              f"{base['max']:.3f} | {e['no_fork']['rmse']:.3f} / {e['no_fork']['max']:.3f} | "
              f"{lk['simulator']['rmse']:.4f} / {lk['baseline']['rmse']:.4f} / {lk['beta_binomial']['rmse']:.4f} | "
              f"{h['counts']['tv']:.2f}, {h['counts']['w1']:.3f} | {wall:.0f} s |", flush=True)


if __name__ == "__main__":
    main()
