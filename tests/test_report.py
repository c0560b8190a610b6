"""`snakemake --report` on a small demo run: every section is there, with the tables and images embedded."""

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
# The demo config, shrunk so that the whole workflow runs in a few minutes on two CPU cores.
SMALL_DEMO = {
    "dataset": {"synthetic": {"n_patients": 6, "studies_per_patient": [4, 5]}},
    "folds": {"k": 2},
    "training": {"max_epochs": 1, "bootstrap": 10},
}


def merge(base: dict, update: dict) -> dict:
    for key, value in update.items():
        base[key] = merge(base.get(key, {}), value) if isinstance(value, dict) else value
    return base


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
               "--configfile", str(workdir / "config.yaml"), "--cores", "2", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=3600)


def embedded(html: str, variable: str) -> dict:
    """A JSON object the report assigns to a JavaScript variable (`results = {...};`)."""
    marker = f"{variable} = {{"
    start = html.index(marker) + len(marker) - 1
    return json.JSONDecoder().raw_decode(html, start)[0]


def decoded(entry: dict) -> bytes:
    return base64.b64decode(entry["data_uri"].split("base64,", 1)[1])


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[dict, dict]:
    # RANOFLOW_DEMO_DIR: a working directory (with its config.yaml) of a demo already run, to report on
    # it instead of running the small demo from scratch (half an hour on two busy cores).
    existing = os.environ.get("RANOFLOW_DEMO_DIR")
    workdir = Path(existing) if existing else tmp_path_factory.mktemp("demo")
    if not existing:
        config = merge(yaml.safe_load((REPO / "config" / "config.yaml").read_text()), SMALL_DEMO)
        (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    run = snakemake(workdir)
    assert run.returncode == 0, run.stderr[-5000:]
    built = snakemake(workdir, "--report", "results/report.html")
    assert built.returncode == 0, built.stderr[-5000:]
    html = (workdir / "results" / "report.html").read_text()
    return embedded(html, "results"), embedded(html, "categories")


def in_category(results: dict, categories: dict, category: str) -> list[dict]:
    return [results[path] for files in categories.get(category, {}).values() for path in files]


def test_report_has_every_section(report):
    _, categories = report
    assert {"Cohort", "QC", "Results", "Explanations", "Provenance"} <= set(categories)


def test_report_embeds_the_summary_table_with_rule_based_rows(report):
    results, _ = report
    table = decoded(results["results/report/results.html"]).decode()
    assert "median_balanced_accuracy" in table
    assert "rano_rules" in table


def test_report_has_qc_and_explanation_images(report):
    results, categories = report
    for category in ("QC", "Explanations"):
        images = [entry for entry in in_category(results, categories, category) if entry["mime_type"] == "image/png"]
        assert images, f"no image under {category}"
        assert decoded(images[0]).startswith(b"\x89PNG")


def test_report_records_cohort_versions_and_config(report):
    results, _ = report
    cohort = decoded(results["results/report/cohort.html"]).decode()
    assert "scorable pairs" in cohort and "Exclusion reasons" in cohort
    provenance = decoded(results["results/report/provenance.html"]).decode()
    assert "snakemake" in provenance and "baseline:" in provenance
