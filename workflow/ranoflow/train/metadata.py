"""metadata.json next to every model: versions, commit, device and the settings it was trained with."""

from __future__ import annotations

import platform
import subprocess
from datetime import datetime, timezone
from importlib import metadata as importlib_metadata
from pathlib import Path

import torch

PACKAGES = ("torch", "monai", "numpy", "pandas", "scikit-learn", "nibabel", "snakemake")


def run_metadata(settings: dict, device: torch.device, threads: int) -> dict:
    """Versions, commit and settings recorded next to every model."""
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = importlib_metadata.version(package)
        except importlib_metadata.PackageNotFoundError:
            versions[package] = None
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None
    return {
        "python": platform.python_version(),
        "packages": versions,
        "git_commit": commit,
        "host": platform.node(),
        "device": str(device),
        "cuda_device": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "threads": threads,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **settings,
    }


