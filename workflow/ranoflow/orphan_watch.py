"""A job that stops when the Snakemake process that started it dies (train and pretrain jobs).

Snakemake runs a script job as a child (through a shell) of its own process. Killed with SIGKILL, it cannot
stop its jobs: they are re-parented and would keep training beside the next run's. The job therefore
watches its chain of parents up to the nearest Snakemake process (on a cluster: the job step's own
Snakemake, so a job outlives a login-node Snakemake exactly as before) and ends itself when a link breaks.
Every epoch is checkpointed, so the next run resumes it. Started by `start_log(snakemake, watch_parent=True)`.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)


def _parent_of(pid: int) -> int | None:
    """The parent pid of `pid` from /proc, None when the process is gone (or /proc is absent)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])  # after the command name, which may hold spaces


def _is_snakemake(pid: int) -> bool:
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(Path(arg.decode(errors="replace")).name == "snakemake" for arg in args[:3])


def parent_chain(max_depth: int = 8) -> list[tuple[int, int]]:
    """(pid, parent pid) links from this process up to the nearest Snakemake process; only the link to
    the direct parent when no Snakemake process is among the ancestors."""
    links: list[tuple[int, int]] = []
    pid = os.getpid()
    for _ in range(max_depth):
        parent = _parent_of(pid)
        if parent is None or parent <= 1:
            break
        links.append((pid, parent))
        if _is_snakemake(parent):
            return links
        pid = parent
    return links[:1]


def stop_when_orphaned(interval_s: float = 2.0) -> threading.Thread | None:
    """Start a daemon thread that sends this process SIGTERM once its parent chain breaks."""
    links = parent_chain()
    if not links:
        return None

    def watch() -> None:
        while all(_parent_of(pid) == parent for pid, parent in links):
            time.sleep(interval_s)
        log.error(
            "the Snakemake process that started this job is gone: stopping; after `snakemake --unlock` the next "
            "run resumes from the last checkpoint"
        )
        os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=watch, name="stop-when-orphaned", daemon=True)
    thread.start()
    return thread
