"""Content checksums of preprocessed studies: what caches and resumable checkpoints are keyed by, so that
new images of a study (another spacing, a rerun registration) are never mistaken for the old ones."""

from __future__ import annotations

import hashlib
from pathlib import Path


def study_checksum(folder: str | Path, pattern: str = "*.nii.gz") -> str:
    """SHA-256 over the names and bytes of a study folder's images ("" when the folder is missing)."""
    folder = Path(folder)
    if not folder.is_dir():
        return ""
    digest = hashlib.sha256()
    for path in sorted(folder.glob(pattern)):
        digest.update(path.name.encode() + b"\0")
        with path.open("rb") as handle:
            digest.update(hashlib.file_digest(handle, "sha256").digest())
    return digest.hexdigest()
