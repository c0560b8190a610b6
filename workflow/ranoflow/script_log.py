"""Logging of the rule scripts: everything a job prints lands in its rule's log file.

Every script in workflow/scripts/ starts with `log = start_log(snakemake)` (long jobs that must not outlive
their Snakemake process with `watch_parent=True`). From then on the job's
standard error and output (Python's and that of native libraries such as ITK), Python warnings, log
records and the traceback of an uncaught exception all go to `snakemake.log[0]`, in one format. An
uncaught exception also leaves one line on the terminal (the job's original standard error): the rule,
its wildcards and the error, so the cause shows beside Snakemake's "Error in rule" without opening the log.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def start_log(snakemake: Any, watch_parent: bool = False) -> logging.Logger:
    """Send this job's output to its log file and return the logger of its rule; with `watch_parent` the job
    also stops itself when the Snakemake process that started it dies (ranoflow.orphan_watch)."""
    path = snakemake.log[0]
    terminal = os.fdopen(os.dup(sys.stderr.fileno()), "w")
    with open(path, "w") as log_file:  # the job starts a fresh log
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
            os.dup2(log_file.fileno(), stream.fileno())
    sys.stdout.reconfigure(line_buffering=True)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format=FORMAT, force=True)
    logging.captureWarnings(True)
    log = logging.getLogger(f"rule.{snakemake.rule}")
    wildcards = ", ".join(f"{key}={value}" for key, value in snakemake.wildcards.items())
    job = f"{snakemake.rule}{f' ({wildcards})' if wildcards else ''}"

    def report(kind: type[BaseException], error: BaseException, trace: Any) -> None:
        log.critical("job failed", exc_info=(kind, error, trace))
        line = f"{job} failed: {kind.__name__}: {error} (log: {path})"
        terminal.write(line.replace("\n", " ") + "\n")
        terminal.flush()

    sys.excepthook = report
    log.info("rule %s, %d thread(s)", job, snakemake.threads)
    if watch_parent:
        from ranoflow.orphan_watch import stop_when_orphaned

        stop_when_orphaned()
    return log
