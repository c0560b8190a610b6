"""No orphaned trainers: when the `snakemake` process dies (SIGKILL, so it cannot stop its jobs), its train
job notices and stops; after `snakemake --unlock` the next run resumes the fold from its checkpoint. While the
first run holds the working directory, a second one on the same target refuses to start."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from demo_run import check, merge, snakemake, write_config

pytestmark = pytest.mark.slow

MODEL = Path("results/models/exp_a/fold_0")


def trainers(workdir: Path) -> list[psutil.Process]:
    """Running train scripts of the workflow copy `workdir` (Snakemake runs them from .snakemake/scripts)."""
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        command = " ".join(process.info["cmdline"] or [])
        if str(workdir) in command and command.rstrip().endswith(".train.py") and \
                process.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(process)
    return found


def wait_for(condition, timeout_s: float, what: str) -> None:
    deadline = time.time() + timeout_s
    while not condition():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_killed_snakemake_leaves_no_trainer_and_the_rerun_resumes(tiny_demo, tmp_path):
    source, config = tiny_demo
    workdir = tmp_path / "run"
    shutil.copytree(source, workdir, symlinks=True)
    # 0.1-0.3 s per tiny epoch: long enough to outlast a second Snakemake start and the wait below
    long_training = merge(config, {"training": {"max_epochs": 400, "early_stopping": {"patience": 0}}})
    configfile = write_config(workdir, long_training, "long.yaml")
    command = [sys.executable, "-m", "snakemake", "--configfile", str(configfile), "--cores", "1",
               str(MODEL / "model.pt")]
    started = subprocess.Popen(command, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    left: list[psutil.Process] = []
    try:
        wait_for(lambda: (workdir / MODEL / "checkpoint.pt").exists(), 240, "the first checkpoint")
        left = trainers(workdir)
        assert len(left) == 1, f"trainers running at the first checkpoint: {left}"
        second = snakemake(workdir, configfile, "--cores", "1", str(MODEL / "model.pt"))  # the same target
        assert second.returncode != 0 and "LockException" in second.stdout + second.stderr, second.stderr[-2000:]
        assert trainers(workdir) == left, "the first trainer ended before the kill: raise max_epochs"
        os.kill(started.pid, signal.SIGKILL)
        started.wait()
        wait_for(lambda: not trainers(workdir), 10, "the orphaned trainer to stop")  # it polls every 2 s
    finally:
        for process in left:  # the trainer this test started, if it outlived the test
            if process.is_running():
                process.kill()
    log = workdir / "results/logs/train/exp_a/fold_0.log"
    assert "the Snakemake process that started this job is gone" in log.read_text()

    check(snakemake(workdir, configfile, "--unlock"))
    check(snakemake(workdir, configfile, "--cores", "1", "--rerun-incomplete", str(MODEL / "model.pt")))
    assert "resumed from" in log.read_text()
    assert (workdir / MODEL / "model.pt").is_file() and not (workdir / MODEL / "checkpoint.pt").exists()
