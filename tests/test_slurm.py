"""The tiny demo through a real Slurm with the cluster profile, up to a training job that asks for a GPU.

Needs the single-node test cluster of tests/slurm/start_cluster.sh (tests/run.sh starts it as root);
skipped when no Slurm controller answers. The command is the README's cluster command,
`snakemake --workflow-profile profiles/slurm`, run from the repository root.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time

import pytest

from demo_run import check, snakemake, tiny_config, write_config

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

PROFILE = "profiles/slurm"
TRAIN_TARGET = "results/models/exp_a/fold_0/metrics.json"
SLURM_RULES = {"skull_strip", "register", "train"}  # non-local rules on the way to the target


def slurm_up() -> str:
    """'' when a Slurm controller and its accounting answer, else why not."""
    for tool in ("sinfo", "scontrol", "sacct"):
        if shutil.which(tool) is None:
            return f"{tool} not installed (start the test cluster with tests/slurm/start_cluster.sh)"
    for command in (["scontrol", "ping"], ["sacct", "-n", "-X", "-S", "now"]):
        run = subprocess.run(command, capture_output=True, text=True, timeout=30)
        if run.returncode != 0:
            return f"`{' '.join(command)}` failed: {(run.stderr or run.stdout).strip()[:200]}"
    return ""


def accounted_jobs(run_id: str, expected: int, wait_s: float = 60) -> list[dict]:
    """sacct rows (JobID, Comment, State, AllocTRES) of the jobs submitted under job name `run_id`,
    waiting until `expected` of them are recorded (slurmdbd stores them a moment after they end)."""
    deadline = time.monotonic() + wait_s
    while True:
        out = subprocess.run(
            ["sacct", "-n", "-X", "-P", "-S", "now-1day", f"--name={run_id}",
             "--format=JobID,Comment,State,AllocTRES"],
            capture_output=True, text=True, check=True,
        ).stdout
        rows = [dict(zip(("id", "comment", "state", "tres"), line.split("|"))) for line in out.splitlines()]
        if len(rows) >= expected and all(r["state"] != "RUNNING" for r in rows) or time.monotonic() > deadline:
            return rows
        time.sleep(2)


def test_demo_runs_through_slurm_with_a_gpu_training_job(tmp_path):
    reason = slurm_up()
    if reason:
        pytest.skip(f"no Slurm cluster: {reason}")

    config = tiny_config(resources={"train": {"gpu": 1, "runtime": 20, "mem_mb": 2000, "threads": 1}})
    configfile = write_config(tmp_path, config)
    run = check(snakemake(tmp_path, configfile, "--workflow-profile", PROFILE, TRAIN_TARGET, timeout_s=600))
    log = run.stdout + run.stderr
    assert (tmp_path / TRAIN_TARGET).is_file()

    run_id = re.search(r"SLURM run ID: (\S+)", log).group(1)
    submitted = dict(re.findall(r"Job (\d+) has been submitted with SLURM jobid (\d+)", log))
    jobs = accounted_jobs(run_id, expected=len(submitted))
    assert {j["id"] for j in jobs} == set(submitted.values()), (jobs, submitted)
    assert all(j["state"] == "COMPLETED" for j in jobs), jobs

    by_rule = {}
    for j in jobs:
        rule = re.match(r"rule_(\w+?)(?:_wildcards_|$)", j["comment"]).group(1)
        by_rule.setdefault(rule, []).append(j)
    assert SLURM_RULES <= set(by_rule), by_rule.keys()
    (train,) = by_rule["train"]
    assert re.search(r"gres/gpu=1\b", train["tres"]), train
    assert all("gres/gpu" not in j["tres"] for r in ("skull_strip", "register") for j in by_rule[r])
