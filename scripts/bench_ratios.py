#!/usr/bin/env python3
"""Runs one criterion bench several times and prints, per run, the ratio of pairs of its
benchmarks, and the median ratio over the runs.

On a shared VM a single criterion run drifts: two benchmarks measured a minute apart can differ
by 30 % for reasons that have nothing to do with the code. A ratio taken within each run and
then the median over several runs is steadier than one run's figures. Standard library only.

    python3 scripts/bench_ratios.py --runs 5 --bench claims \\
        --pair "verify/three extra claims" "verify/no extra claims" \\
        --pair "layer/layer: three extra claims" "layer/layer: no extra claims"

Extra arguments after `--` go to cargo (e.g. `-- --features axum`). Each run uses
`--warm-up-time 1 --measurement-time 3` unless --criterion-args says otherwise.
"""

import argparse
import json
import pathlib
import statistics
import subprocess
import sys


def medians(criterion_dir):
    """full_id -> median in ns, from every new/estimates.json under criterion_dir."""
    out = {}
    for bench in pathlib.Path(criterion_dir).glob("**/new/benchmark.json"):
        full_id = json.loads(bench.read_text())["full_id"]
        estimates = json.loads((bench.parent / "estimates.json").read_text())
        out[full_id] = estimates["median"]["point_estimate"]
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bench", required=True)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--pair", nargs=2, action="append", required=True,
                        metavar=("NUMERATOR", "DENOMINATOR"))
    parser.add_argument("--criterion-args", default="--warm-up-time 1 --measurement-time 3")
    parser.add_argument("--target", default="target/criterion")
    parser.add_argument("cargo_args", nargs="*")
    args = parser.parse_args()

    names = sorted({name for pair in args.pair for name in pair})
    ratios = {tuple(pair): [] for pair in args.pair}
    for run in range(1, args.runs + 1):
        filters = ["--bench", args.bench, *args.cargo_args, "--", *args.criterion_args.split()]
        subprocess.run(["cargo", "bench", *filters], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        figures = medians(args.target)
        missing = [name for name in names if name not in figures]
        if missing:
            sys.exit(f"no criterion result for {missing}")
        cells = []
        for pair in args.pair:
            num, den = figures[pair[0]], figures[pair[1]]
            ratios[tuple(pair)].append(num / den)
            cells.append(f"{num:8.0f} / {den:8.0f} ns = {num / den:.2f}")
        print(f"run {run}: " + "   ".join(cells), flush=True)
    print()
    for pair, values in ratios.items():
        print(f"{pair[0]} / {pair[1]}: median {statistics.median(values):.2f} "
              f"(runs {min(values):.2f}-{max(values):.2f})")


if __name__ == "__main__":
    main()
