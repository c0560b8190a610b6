"""The tiny demo through a real Slurm with the cluster profile, up to a training job that asks for a GPU.

Needs the single-node test cluster of tests/slurm/start_cluster.sh (tests/run.sh starts it as root);
skipped when no Slurm controller answers. The command is the README's cluster command, typed as users
type it: `snakemake --profile slurm` from the root of a copy of the repository, after the README's
one-time `bash workflow/install_slurm_profile.sh` into a temporary Snakemake configuration directory
(XDG_CONFIG_HOME); the job groups come from profiles/default, which Snakemake adds by itself.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time

import pandas as pd
import pytest
from demo_run import check, snakemake, snapshot, tiny_config, write_config

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

PROFILE = "slurm"  # the named profile, as installed by workflow/install_slurm_profile.sh
TRAIN_TARGET = "results/models/exp_a/fold_0/metrics.json"
TRAIN_COMMENT = "rule_train_wildcards_exp_a_0"  # the plugin's sbatch --comment
PREPROCESS_GROUP = "preprocess"  # profiles/default groups a study's preprocessing jobs (register; skull_strip too with separate_job)


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
        pytest.skip(f"no Slurm cluster ({reason}); start one as root: bash tests/slurm/start_cluster.sh")

    config = tiny_config(resources={"train": {"gpu": 1, "runtime": 20, "mem_mb": 2000, "threads": 1}})
    root = snapshot(tmp_path)
    xdg = {"XDG_CONFIG_HOME": str(tmp_path / "xdg-config")}
    subprocess.run(["bash", "workflow/install_slurm_profile.sh"], cwd=root, env={**os.environ, **xdg},
                   check=True, capture_output=True)
    run = check(snakemake(root, write_config(root, config), "--profile", PROFILE, TRAIN_TARGET,
                          timeout_s=600, env=xdg))
    log = run.stdout + run.stderr
    assert "Using profiles slurm and workflow specific profile profiles/default" in log, log[:2000]
    assert (tmp_path / TRAIN_TARGET).is_file()

    run_id = re.search(r"SLURM run ID: (\S+)", log).group(1)
    submitted = set(re.findall(r"Job \S+ has been submitted with SLURM jobid (\d+)", log))
    check_accounting(accounted_jobs(run_id, expected=len(submitted)), submitted, tmp_path)


def check_accounting(jobs: list[dict], submitted: set[str], workdir) -> None:
    """Every submitted job is in sacct and completed; one per paired study's preprocessing (the
    profile's `preprocess` group), the training job with a GPU, the others without."""
    assert {j["id"] for j in jobs} == submitted, (jobs, submitted)
    assert all(j["state"] == "COMPLETED" for j in jobs), jobs
    comments = [j["comment"] for j in jobs]
    assert "rule_synthetic_dataset" in comments, comments

    studies = pd.read_csv(workdir / "results/preprocessed/manifest.tsv", sep="\t")
    preprocess = [j for j in jobs if j["comment"].startswith(f"rule_{PREPROCESS_GROUP}_")]
    assert len(preprocess) == len(studies), comments
    assert all("register" in j["comment"] for j in preprocess), comments  # skull strip in the same job

    (train,) = [j for j in jobs if j["comment"] == TRAIN_COMMENT]
    assert re.search(r"gres/gpu=1\b", train["tres"]), train
    assert all("gres/gpu" not in j["tres"] for j in jobs if j is not train), jobs
