"""One trainer per fold: a second trainer of the same output folder refuses to start while the first one
runs (the job's stop when its Snakemake process dies is ranoflow.orphan_watch)."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO


def hold_lock(path: str | Path) -> IO[str]:
    """An exclusive lock on `path`, held until the returned file is closed or the process ends; raises
    RuntimeError naming the holder's pid when another process holds it."""
    handle = open(path, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise RuntimeError(f"{path}: another trainer (pid {holder}) is training this fold; stop it first") from None
    handle.truncate(0)
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle
