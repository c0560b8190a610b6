"""A tiny synthetic demo run in a temporary directory, and reading what `snakemake -n` plans.

Shared by tests/test_reruns.py and tests/test_slurm.py: the tiny config is config/config.yaml (the demo)
with the dataset, folds and training shrunk, so it follows the demo as the stages evolve.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
FOLDS = 2
# Two experiments: editing one must not touch the other.
EXPERIMENTS = {
    "exp_a": {"ablation": "demo", "modalities": ["CT1", "T1", "T2", "FLAIR"], "input": "stack",
              "architecture": "densenet121"},
    "exp_b": {"ablation": "demo", "modalities": ["T1", "T2", "FLAIR"], "input": "subtract",
              "architecture": "densenet121"},
}
TINY = {
    # Coarse voxels and no skull keep preprocessing at a few seconds per study.
    "dataset": {"synthetic": {"n_patients": 6, "studies_per_patient": [3, 4], "seed": 3, "skull": False,
                              "voxel_mm": 6.0, "slice_mm": 6.0}},
    # batch: study, one register job per study as on a cluster (the rerun and Slurm tests plan per study);
    # the demo's batch: patient is checked against it in tests/preprocess/test_preprocess_snakemake.py.
    "preprocessing": {"skull_strip": {"method": "passthrough"}, "registration_mm": 6.0, "spacing_mm": 6.0,
                      "n4": False, "batch": "study"},
    "folds": {"protocol": "patient", "k": FOLDS},
    "training": {
        "image_size": [32, 32, 32],
        "batch_size": 2,
        "max_epochs": 1,
        "bootstrap": 10,
        "model_kwargs": {"init_features": 4, "growth_rate": 4, "block_config": [1, 1, 1, 1]},
        "pretext_tasks": {},
        # 6 pairs cannot put every class in every fold's training split
        "allow_missing_class": True,
    },
    "experiments": EXPERIMENTS,
    "explain": {"best": False, "experiments": ["exp_a"], "methods": ["saliency"]},
    "evaluate": {"reference_experiment": "exp_a"},
    "resources": {"train": {"gpu": 0, "runtime": 20, "mem_mb": 2000, "threads": 1}},
}


def merge(base: dict, extra: dict) -> dict:
    """`base` updated recursively with `extra` (mappings merge, everything else is replaced)."""
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def tiny_config(**overrides: dict) -> dict:
    """The demo config shrunk to a run of a few minutes on 2 CPUs, then `overrides` merged in."""
    demo = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    demo.pop("experiments", None)  # replaced, not merged
    return merge(merge(demo, TINY), overrides)


def write_config(root: Path, config: dict, name: str = "tiny.yaml") -> Path:
    path = root / name
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def snapshot(dest: Path) -> Path:
    """Copy the workflow as a user's clone holds it into `dest` and return `dest`: runs there start
    from the repository root, as users do, and see no edits made to the repository meanwhile."""
    for name in ("Snakefile", "pyproject.toml"):
        shutil.copy2(REPO / name, dest / name)
    for name in ("workflow", "config", "envs", "profiles"):
        shutil.copytree(REPO / name, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    return dest


def snakemake(root: Path, configfile: Path, *args: str, timeout_s: int = 280,
              env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`snakemake --configfile <configfile> <args>` in the workflow copy `root`, bounded by
    `timeout -s INT` (so an interrupted run still cancels its cluster jobs and cleans up); `env` is
    added to this process's environment."""
    command = ["timeout", "-s", "INT", str(timeout_s), sys.executable, "-m", "snakemake",
               "--configfile", str(configfile), *args]
    return subprocess.run(command, cwd=root, capture_output=True, text=True, env={**os.environ, **(env or {})})


def check(run: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert run.returncode == 0, f"snakemake failed ({run.returncode}):\n{run.stdout[-4000:]}\n{run.stderr[-8000:]}"
    return run


# A job's header line and its more-indented body; jobs of a group job are listed indented under it.
_JOB = re.compile(r"^(?P<indent>[ \t]*)(?:local)?(?:rule|checkpoint) (\w+):\n((?:(?P=indent)[ \t]+\S.*\n?)*)", re.M)
_WILDCARDS = re.compile(r"^\s+wildcards: (.*)$", re.M)


def planned_jobs(dry_run_output: str) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    """{(rule, ((wildcard, value), ...))} of the jobs a `snakemake -n` log lists."""
    jobs = set()
    for match in _JOB.finditer(dry_run_output):
        wildcards = _WILDCARDS.search(match.group(3))
        pairs = []
        if wildcards:
            pairs = [tuple(item.split("=", 1)) for item in wildcards.group(1).split(", ")]
        jobs.add((match.group(2), tuple(sorted(pairs))))
    return jobs


def plan(root: Path, configfile: Path, *args: str) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    """The jobs `snakemake -n` would run in the workflow copy `root` with `configfile`."""
    run = check(snakemake(root, configfile, "--dry-run", "--cores", "1", *args))
    return planned_jobs(run.stdout + run.stderr)


def rules_of(jobs) -> set[str]:
    return {rule for rule, _ in jobs}


def wildcard_values(jobs, rule: str, name: str) -> set[str]:
    return {dict(wc)[name] for r, wc in jobs if r == rule}
