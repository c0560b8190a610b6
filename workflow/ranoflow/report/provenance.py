"""Software versions and configuration that produced a run, for the report."""

from __future__ import annotations

import platform
import tomllib
from importlib import metadata
from pathlib import Path

import pandas as pd
from packaging.requirements import Requirement
from packaging.version import InvalidVersion, Version


def pinned_requirements(pyproject: str | Path) -> dict[str, str]:
    """Package -> pinned version from pyproject.toml's [project] dependencies ('' when not pinned with ==)."""
    pins = {}
    for line in tomllib.loads(Path(pyproject).read_text())["project"]["dependencies"]:
        requirement = Requirement(line)
        exact = [spec.version for spec in requirement.specifier if spec.operator == "=="]
        pins[requirement.name] = exact[0] if exact else ""
    return pins


def software_versions(pins: dict[str, str], known: dict[str, str] | None = None) -> pd.DataFrame:
    """Installed version of every declared dependency (pins: package -> pinned version, as from
    `pinned_requirements`) beside its pin, plus Python and the platform.

    known: versions found elsewhere (e.g. the running Snakemake, absent from a rule's conda env).
    """
    rows = [
        {"package": "python", "pinned": "", "installed": platform.python_version()},
        {"package": "platform", "pinned": "", "installed": platform.platform()},
    ]
    for name, pin in pins.items():
        try:
            installed = (known or {}).get(name) or metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = "not installed"
        rows.append({"package": name, "pinned": pin, "installed": installed})
    frame = pd.DataFrame(rows)
    frame["matches_pin"] = [_matches(pin, installed) for pin, installed in zip(frame["pinned"], frame["installed"])]
    return frame


def _matches(pin: str, installed: str) -> str:
    """yes/no against the pin, ignoring a local build tag (torch's '+cpu'); '' when nothing is pinned."""
    if not pin:
        return ""
    try:
        return "yes" if Version(installed).public == Version(pin).public else "no"
    except InvalidVersion:
        return "no"
