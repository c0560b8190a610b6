"""The workflow follows the Snakemake catalog's conventions: `snakemake --lint` and `snakefmt --check`
are clean, and parsing the Snakefile imports none of the heavy libraries."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_snakemake_lint_is_clean() -> None:
    result = run(sys.executable, "-m", "snakemake", "--lint")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Lints for" not in result.stdout + result.stderr


def test_snakefmt_check_is_clean() -> None:
    result = run(str(BIN / "snakefmt"), "--check", ".")
    assert result.returncode == 0, result.stderr[-3000:]


def test_parse_imports_no_torch_monai_or_ants() -> None:
    probe = (
        "import sys, runpy\n"
        "sys.argv = ['snakemake', '--lint']\n"
        "from snakemake.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = sorted(m for m in ('torch', 'monai', 'ants', 'captum') if m in sys.modules)\n"
        "print('HEAVY=' + ','.join(heavy))\n"
        "print('PARSED=' + str('pandas' in sys.modules))\n"  # common.smk imports pandas
    )
    result = run(sys.executable, "-c", probe)
    line = [entry for entry in result.stdout.splitlines() if entry.startswith("HEAVY=")]
    assert line == ["HEAVY="], result.stdout[-2000:] + result.stderr[-2000:]
    assert "PARSED=True" in result.stdout
