"""Fixtures shared across test modules, and how `pytest -n N` (pytest-xdist) spreads the suite over N
workers."""

from __future__ import annotations

from pathlib import Path

import pytest

from demo_run import check, snakemake, snapshot, tiny_config, write_config

SHARED_RUN = "tiny_demo"
# The modules whose tests use the shared run: one xdist work unit, so that one worker builds it.
SHARED_RUN_MODULES = frozenset({
    "tests/explain/test_explain_demo.py",
    "tests/predict/test_export_demo.py",
    "tests/report/test_report.py",
    "tests/workflow/test_orphans.py",
    "tests/workflow/test_reruns.py",
})


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


def work_unit(nodeid: str) -> str:
    """The xdist work unit of a test: its module (module-scoped fixtures are built once), or the shared
    tiny run for the modules that use it (a session fixture is built once per worker)."""
    module = nodeid.split("::", 1)[0]
    return SHARED_RUN if module in SHARED_RUN_MODULES else module


def run_order(item: pytest.Item) -> int:
    """Longest units first, so that no worker starts a minutes-long one when the others are done:
    the Slurm run (mostly waiting on the cluster), then everything built on the shared tiny run."""
    if item.get_closest_marker("slurm"):
        return 0
    return 1 if work_unit(item.nodeid) == SHARED_RUN else 2


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The same order on every worker, as xdist requires; stable within each class."""
    for item in items:
        if SHARED_RUN in item.fixturenames and work_unit(item.nodeid) != SHARED_RUN:
            raise pytest.UsageError(f"{item.nodeid} uses {SHARED_RUN}: add its module to SHARED_RUN_MODULES "
                                    "in tests/conftest.py")
    items.sort(key=run_order)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """Work units as `work_unit` says, handed out in collection order (xdist's own `loadgroup` marks
    do not reach the scheduler under pytest 9)."""
    if config.getoption("dist") not in ("load", "loadscope", "loadfile", "loadgroup"):
        return None
    from xdist.scheduler import LoadScopeScheduling

    class WorkUnitScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    config.option.loadscopereorder = False  # keep the longest-first order of run_order
    return WorkUnitScheduling(config, log)
