"""workflow/setup_env.sh: the Python range of pyproject.toml, and one clear line when no interpreter fits."""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from pathlib import Path

from packaging.specifiers import SpecifierSet

REPO = Path(__file__).resolve().parents[2]


def test_requires_python_covers_3_11_to_3_13() -> None:
    requires = SpecifierSet(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"])
    assert {"3.11", "3.12", "3.13"} <= {v for v in ("3.10", "3.11", "3.12", "3.13", "3.14") if v in requires}
    assert "3.10" not in requires and "3.14" not in requires


def test_setup_stops_with_one_line_when_no_suitable_python(tmp_path: Path) -> None:
    """Only an unsuitable python3 on PATH (its version check fails, as a 3.10 one does): the set-up says what
    to install and stops."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    old = bin_dir / "python3"
    old.write_text("#!/bin/sh\nexec " + shutil.which("python3") + " -c 'import sys; sys.exit(1)'\n")
    old.chmod(0o755)
    for tool in ("bash", "cmp", "cp"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    shutil.copy2(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    run = subprocess.run(["bash", "-c", f"source {REPO / 'workflow' / 'setup_env.sh'}"], cwd=tmp_path,
                         env={"PATH": str(bin_dir)}, capture_output=True, text=True)
    assert run.returncode == 1
    assert run.stderr.strip().splitlines() == [
        "ranoflow needs Python 3.11, 3.12 or 3.13 with its venv module (none on PATH; install one, e.g. "
        "apt-get install python3.12-venv, or set RANOFLOW_PYTHON=/path/to/python3.12)"
    ]
    assert not (tmp_path / ".venv").exists()
