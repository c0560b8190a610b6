"""Benchmark: what the demo costs in CPU, per rule and for Snakemake's own scheduling process.

Two parts, usable apart:

* `--run ARGS...` runs `snakemake ARGS` from the repository root in a child process that records its
  own CPU time (getrusage RUSAGE_SELF at exit: the scheduling process with its threads) next to the CPU
  of everything it started (the jobs). Prints both and the scheduler's share of the total.
* Afterwards (or alone, on any results tree) it sums `results/benchmarks/<rule>/**/*.tsv` (Snakemake's
  per-job benchmark files): jobs, job-seconds (column `s`) and CPU seconds (`cpu_time`) per rule.

  python tests/benchmarks/demo_cost.py                                  # tables of ./results/benchmarks
  python tests/benchmarks/demo_cost.py --results /work/demo_before/results
  python tests/benchmarks/demo_cost.py --run --cores 2                  # run the demo, then both tables
  python tests/benchmarks/demo_cost.py --run --cores 2 results/preprocessed/manifest.tsv

The figures are CPU seconds, so they compare across runs on a loaded machine where wall times do not.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Runs snakemake in this process and writes its own CPU (the scheduler: main thread plus the threads
# that wait on jobs and poll their benchmarks) at exit; the jobs are its children.
_WRAPPER = """
import atexit, json, resource, runpy, sys
def _dump():
    own = resource.getrusage(resource.RUSAGE_SELF)
    with open({out!r}, "w") as f:
        json.dump({{"user": own.ru_utime, "sys": own.ru_stime}}, f)
atexit.register(_dump)
sys.argv = ["snakemake", *{args!r}]
runpy.run_module("snakemake", run_name="__main__")
"""


def run_snakemake(args: list[str], python: str) -> dict:
    """Run snakemake with args; the scheduler's and the jobs' CPU seconds and the wall seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "self.json"
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        code = subprocess.call([python, "-c", _WRAPPER.format(out=str(out), args=args)], cwd=REPO)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        own = json.loads(out.read_text()) if out.is_file() else {"user": 0.0, "sys": 0.0}
    total = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    scheduler = own["user"] + own["sys"]
    return {"returncode": code, "wall_s": wall, "total_cpu_s": total, "scheduler_cpu_s": scheduler,
            "jobs_cpu_s": total - scheduler}


def _number(value: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def rule_costs(benchmarks: Path) -> dict[str, dict[str, float]]:
    """{rule: {"jobs", "s", "cpu_time"}} summed over every benchmark file under benchmarks/<rule>/."""
    costs: dict[str, dict[str, float]] = {}
    for path in sorted(benchmarks.glob("*/**/*.tsv")):
        rule = path.relative_to(benchmarks).parts[0]
        with path.open() as handle:
            rows = list(csv.DictReader(handle, delimiter="\t"))
        cost = costs.setdefault(rule, {"jobs": 0, "s": 0.0, "cpu_time": 0.0})
        for row in rows[-1:]:  # one row per job (more only with benchmark repeats: the last counts)
            cost["jobs"] += 1
            cost["s"] += _number(row.get("s"))
            cost["cpu_time"] += _number(row.get("cpu_time"))
    return costs


def print_rule_table(costs: dict[str, dict[str, float]]) -> None:
    print(f"{'rule':<22}{'jobs':>6}{'job-s':>10}{'cpu-s':>10}{'cpu-s/job':>11}")
    for rule, cost in sorted(costs.items(), key=lambda item: -item[1]["s"]):
        per_job = cost["cpu_time"] / cost["jobs"] if cost["jobs"] else 0.0
        print(f"{rule:<22}{cost['jobs']:>6}{cost['s']:>10.1f}{cost['cpu_time']:>10.1f}{per_job:>11.2f}")
    jobs = sum(c["jobs"] for c in costs.values())
    print(f"{'total':<22}{jobs:>6}{sum(c['s'] for c in costs.values()):>10.1f}"
          f"{sum(c['cpu_time'] for c in costs.values()):>10.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=REPO / "results", help="results tree to read")
    parser.add_argument("--python", default=str(REPO / ".venv" / "bin" / "python"))
    parser.add_argument("--run", nargs=argparse.REMAINDER, help="run snakemake with these arguments first")
    args = parser.parse_args()
    if args.run is not None:
        os.environ.setdefault("PYTHONPATH", str(REPO / "workflow"))
        run = run_snakemake(args.run, args.python)
        share = run["scheduler_cpu_s"] / run["total_cpu_s"] if run["total_cpu_s"] else 0.0
        print(f"snakemake {' '.join(args.run)}  (exit {run['returncode']})")
        print(f"wall {run['wall_s']:.1f} s; CPU: scheduler {run['scheduler_cpu_s']:.1f} s, "
              f"jobs {run['jobs_cpu_s']:.1f} s, total {run['total_cpu_s']:.1f} s; "
              f"scheduler share {100 * share:.1f} %")
    costs = rule_costs(args.results / "benchmarks")
    if costs:
        print_rule_table(costs)
    else:
        print(f"no benchmark files under {args.results / 'benchmarks'}")


if __name__ == "__main__":
    main()
