"""Faults of the machine against faults of the data: only the latter may skip a study.

`preprocessing.on_error: skip` records a study as failed and goes on, so a study whose job met a full
disk, an I/O error, a read-only or stale file system, missing memory or a permission problem would be
left out of every later run. Such an error is raised instead (MachineFault): the job fails, Snakemake
removes its output, and the next run retries the study.
"""

from __future__ import annotations

import errno
import os

# errno values that say something about the machine, not about the image being read
MACHINE_ERRNOS = frozenset({
    errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EROFS, errno.ESTALE, errno.ENOMEM,
    errno.EMFILE, errno.ENFILE, errno.EACCES, errno.EPERM, errno.ETIMEDOUT, errno.ENOLCK, errno.EAGAIN,
})
# ITK and other native libraries report the same faults as text inside a RuntimeError
_MESSAGES = tuple(os.strerror(code).lower() for code in MACHINE_ERRNOS)


class MachineFault(RuntimeError):
    """A job error caused by the machine (disk, memory, file system): never a reason to skip a study."""


def _chain(error: BaseException):
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def machine_fault(error: BaseException) -> BaseException | None:
    """The error in `error`'s chain (itself, its cause, its context) that is a fault of the machine, or None."""
    for link in _chain(error):
        if isinstance(link, MemoryError):
            return link
        if isinstance(link, OSError) and link.errno in MACHINE_ERRNOS:
            return link
        if isinstance(link, RuntimeError) and any(text in str(link).lower() for text in _MESSAGES):
            return link
    return None


def raise_machine_fault(error: BaseException) -> None:
    """Raise MachineFault (one line: what happened, and that the next run retries) when `error` is one."""
    fault = machine_fault(error)
    if fault is not None:
        raise MachineFault(
            f"{type(fault).__name__}: {fault} - a fault of the machine, not of the study's data, so it is not "
            "skipped (on_error: skip covers bad images); free the resource and rerun: the study is retried"
        ) from error
