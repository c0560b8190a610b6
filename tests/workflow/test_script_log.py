"""Every rule script logs through `ranoflow.script_log.start_log`: whatever a job prints, warns or raises ends
up in its rule's log file."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from lumiere_fixture import write_lumiere_fixture

from ranoflow import lumiere

REPO = Path(__file__).resolve().parents[2]

JOB = textwrap.dedent(
    """
    import os, sys, warnings
    from types import SimpleNamespace
    sys.path.insert(0, sys.argv[2])
    from ranoflow.script_log import start_log

    snakemake = SimpleNamespace(log=[sys.argv[1]], rule="probe", wildcards={"fold": "0"}, threads=1)
    log = start_log(snakemake)
    log.info("a log record")
    print("printed to stdout")
    warnings.warn("a python warning")
    os.write(2, b"native stderr\\n")
    raise RuntimeError("the job broke")
    """
)


def test_output_warnings_and_traceback_reach_the_log_file(tmp_path: Path) -> None:
    log_file = tmp_path / "probe.log"
    log_file.write_text("left over from an earlier attempt\n")
    run = subprocess.run(
        [sys.executable, "-c", JOB, str(log_file), str(REPO / "workflow")], capture_output=True, text=True
    )
    assert run.returncode == 1
    # all of it is in the file; the console gets one line: the job and its error
    assert run.stdout == ""
    assert run.stderr == f"probe (fold=0) failed: RuntimeError: the job broke (log: {log_file})\n"
    text = log_file.read_text()
    assert "left over" not in text
    assert re.search(r"^\S+ \S+ INFO rule\.probe: rule probe \(fold=0\), 1 thread\(s\)$", text, re.M)
    for expected in ("a log record", "printed to stdout", "a python warning", "native stderr", "job failed"):
        assert expected in text, f"{expected!r} missing from the log:\n{text}"
    assert "Traceback (most recent call last)" in text and "RuntimeError: the job broke" in text


def test_script_imports_the_helper_and_no_script_sets_up_logging_itself() -> None:
    """One job-start helper: every script starts with start_log (train and pretrain also watch their parent)."""
    for script in sorted((REPO / "workflow" / "scripts").glob("*.py")):
        text = script.read_text()
        assert re.search(r"start_log\(snakemake(, watch_parent=True)?\)", text), f"{script.name} does not call start_log"
        assert "basicConfig" not in text and "sys.stderr =" not in text, f"{script.name} sets up logging itself"


def index_run(tmp_path: Path, root: Path) -> subprocess.CompletedProcess:
    """`snakemake results/index/studies.tsv` on the LUMIERE tree `root`, run in `tmp_path`."""
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"dataset": {"source": "lumiere", "root": str(root)}}))
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path),
         "--configfile", str(tmp_path / "config.yaml"), "--cores", "1", "results/index/studies.tsv"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


@pytest.mark.slow
def test_failing_rule_leaves_its_traceback_in_the_rule_log(tmp_path: Path) -> None:
    """A real Snakemake run on a ratings file without its `Date` column: the index job fails, and its log
    names the file and the column under the traceback."""
    root = write_lumiere_fixture(tmp_path / "LUMIERE", n_plain=2)
    ratings = root / lumiere.RATINGS_CSV
    with ratings.open(newline="") as handle:
        rows = list(csv.reader(handle))
    keep = [i for i, name in enumerate(rows[0]) if name != "Date"]
    with ratings.open("w", newline="") as handle:
        csv.writer(handle).writerows([[row[i] for i in keep] for row in rows])
    run = index_run(tmp_path, root)
    assert run.returncode != 0
    log = (tmp_path / "results" / "logs" / "index" / "index.log").read_text()
    assert "Traceback (most recent call last)" in log
    assert re.search(r"DatasetError: .*LUMIERE-ExpertRating-v202211\.csv: required column\(s\) 'Date' missing", log)
    shown = [line for line in run.stderr.splitlines() if line.startswith("index failed: DatasetError: ")]
    assert len(shown) == 1 and "LUMIERE-ExpertRating-v202211.csv: required column(s) 'Date' missing" in shown[0]


@pytest.mark.slow
def test_an_empty_csv_fails_the_index_with_one_line_naming_the_file(tmp_path: Path) -> None:
    root = write_lumiere_fixture(tmp_path / "LUMIERE", n_plain=2)
    (root / lumiere.COMPLETENESS_CSV).write_text("")
    run = index_run(tmp_path, root)
    assert run.returncode != 0
    expected = f"{root / lumiere.COMPLETENESS_CSV}: empty file, no header row"
    shown = [line for line in run.stderr.splitlines() if line.startswith("index failed: ")]
    assert len(shown) == 1 and expected in shown[0], run.stderr[-3000:]
    log = (tmp_path / "results" / "logs" / "index" / "index.log").read_text()
    assert expected in log and "No columns to parse" not in log + run.stderr
