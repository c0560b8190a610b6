"""Fixtures shared across test modules."""

from __future__ import annotations

from pathlib import Path

import pytest

from demo_run import check, snakemake, snapshot, tiny_config, write_config


@pytest.fixture(scope="session")
def tiny_demo(tmp_path_factory) -> tuple[Path, dict]:
    """One tiny demo run through the whole workflow (default target, then `--report`) in a copy of the
    workflow, shared by the rerun and report tests so CI pays for it once."""
    workdir = snapshot(tmp_path_factory.mktemp("tiny_demo"))
    config = tiny_config()
    configfile = write_config(workdir, config)
    check(snakemake(workdir, configfile, "--cores", "2", timeout_s=900))
    check(snakemake(workdir, configfile, "--cores", "2", "--report", "results/report.html", timeout_s=300))
    return workdir, config
