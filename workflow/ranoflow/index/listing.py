"""A cheap fingerprint of a dataset's Imaging/ tree, computed at parse time as a param of rule index.

Snakemake sees Imaging/ as one directory input whose time stamp changes only when a patient folder is
added or removed; a study folder renamed, added or removed inside a patient, or an image replaced, would
leave the index stale. The fingerprint hashes every file's path relative to Imaging/ and its size (no
file is opened), so any such change reruns the index and what follows, and a moved tree with the same
content gives the same fingerprint.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def _entries(folder: str, prefix: str):
    try:
        with os.scandir(folder) as found:
            children = sorted(found, key=lambda entry: entry.name)
    except OSError as error:  # an unreadable folder is part of the listing, not a crash at parse time
        yield f"{prefix}\t<unreadable: {error.strerror}>"
        return
    for entry in children:
        name = f"{prefix}{entry.name}"
        try:
            if entry.is_dir():
                yield f"{name}/"
                yield from _entries(entry.path, f"{name}/")
            else:
                yield f"{name}\t{entry.stat().st_size}"
        except OSError as error:
            yield f"{name}\t<unreadable: {error.strerror}>"


def imaging_listing(imaging: str | Path) -> str:
    """sha256 of the sorted listing (relative paths, file sizes) of the tree under `imaging`."""
    digest = hashlib.sha256()
    if not Path(imaging).is_dir():
        return "absent"
    for line in _entries(str(imaging), ""):
        digest.update(line.encode("utf-8", "surrogateescape") + b"\n")
    return digest.hexdigest()
