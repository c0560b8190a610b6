"""`snakemake --report` on a small demo run: every section is there, with the tables and images embedded."""

import base64
import json

import pytest

pytestmark = pytest.mark.slow


def embedded(html: str, variable: str) -> dict:
    """A JSON object the report assigns to a JavaScript variable (`results = {...};`)."""
    marker = f"{variable} = {{"
    start = html.index(marker) + len(marker) - 1
    return json.JSONDecoder().raw_decode(html, start)[0]


def decoded(entry: dict) -> bytes:
    return base64.b64decode(entry["data_uri"].split("base64,", 1)[1])


@pytest.fixture(scope="module")
def report(tiny_demo) -> tuple[dict, dict]:
    """The report of the tiny demo run (tests/conftest.py), as the JSON objects the HTML embeds."""
    workdir, _ = tiny_demo
    html = (workdir / "results" / "report.html").read_text()
    return embedded(html, "results"), embedded(html, "categories")


def in_category(results: dict, categories: dict, category: str) -> list[dict]:
    return [results[path] for files in categories.get(category, {}).values() for path in files]


def test_report_has_every_section(report):
    _, categories = report
    assert {"At a glance", "Cohort", "QC", "Results", "Explanations", "Provenance"} <= set(categories)
    # the menu sorts categories by name: the front page comes first
    assert sorted(categories, key=str.lower)[0] == "At a glance"


def test_report_opens_on_the_ranking_and_the_per_class_table(tiny_demo, report):
    """The landing text (what a reader sees first) embeds the ranking figure and the per-class table, PD first;
    the front page beside it adds the ablations."""
    workdir, _ = tiny_demo
    html = (workdir / "results" / "report.html").read_text()
    marker = "var workflow_desc = "
    landing = json.JSONDecoder().raw_decode(html, html.index(marker) + len(marker))[0]
    assert "data:image/png;base64," in landing and "<th>recall PD</th><th>recall SD</th>" in landing
    results, _ = report
    front = decoded(results["results/report/front_page.html"]).decode()
    assert "Per class" in front and "paired differences" in front and "Best experiment:" in front


def test_report_has_training_curves_and_a_confusion_matrix_per_row(tiny_demo, report):
    workdir, config = tiny_demo
    results, _ = report
    for experiment in config["experiments"]:
        assert decoded(results[f"results/plots/training/{experiment}.png"]).startswith(b"\x89PNG")
    assert decoded(results["results/plots/confusion_matrices.png"]).startswith(b"\x89PNG")
    explanations = decoded(results["results/report/explanations.html"]).decode()
    assert "pointing hit rate" in explanations and "<b>true " in explanations


def test_report_embeds_the_summary_table_with_rule_based_rows(report):
    results, _ = report
    table = decoded(results["results/report/results.html"]).decode()
    assert "median_balanced_accuracy" in table
    assert "rano_rules" in table
    assert "rano_rules_previous" in table


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
