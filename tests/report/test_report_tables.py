import pandas as pd

from ranoflow.report import cohort, provenance
from ranoflow.report.html_page import html_page

REPO = __import__("pathlib").Path(__file__).resolve().parents[2]


def test_cohort_tables_count_pairs_per_class_and_fold():
    studies = pd.DataFrame(
        {
            "patient": ["P-1", "P-1", "P-1", "P-2", "P-2"],
            "study": ["week-000", "week-010", "week-020", "week-000", "week-010"],
            "rating": ["Post-Op", "PD", "SD", "Post-Op", "CR"],
            "seg_deepbratumia": ["a", "b", "", "c", "d"],
            "seg_hdglio": ["", "", "", "", ""],
        }
    )
    pairs = pd.DataFrame(
        {"id": ["x", "y", "z"], "patient": ["P-1", "P-1", "P-2"], "label": ["PD", "SD", "CR"]}
    )
    excluded = pd.DataFrame(
        {"patient": ["P-1", "P-2", "P-3"], "study": ["week-000", "week-000", "week-005"],
         "reason": ["rating Post-Op", "rating Post-Op", "no study folder for rating row"]}
    )
    overview = cohort.overview(studies, pairs, excluded).set_index("item")["value"]
    assert overview["patients with a study folder"] == 2
    assert overview["studies with a DeepBraTumIA segmentation"] == 4
    assert overview["scorable pairs"] == 3

    per_class = cohort.pairs_per_class(pairs, {"folds": [{"fold": 0, "test": ["x", "z"]}, {"fold": 1, "test": ["y"]}]})
    assert per_class.set_index("set").loc["all pairs", ["CR", "PR", "SD", "PD", "total"]].tolist() == [1, 0, 1, 1, 3]
    assert per_class.set_index("set").loc["fold 0 test", ["CR", "PD", "patients"]].tolist() == [1, 1, 2]

    reasons = cohort.exclusion_reasons(excluded)
    assert reasons.iloc[0].tolist() == ["rating Post-Op", 2, 2]


def test_flagged_studies_keep_only_non_ok_rows():
    registration = pd.DataFrame({"patient": ["a", "b", "c"], "study": ["s", "s", "s"],
                                 "status": ["ok", "flagged", "failed"]})
    assert cohort.flagged_studies(registration)["patient"].tolist() == ["b", "c"]


def test_html_page_escapes_and_renders_tables():
    page = html_page("T <1>", {"table": pd.DataFrame({"a": [1.23456]}), "text": "x: <y>", "empty": pd.DataFrame()})
    assert "T &lt;1&gt;" in page and "<table" in page and "1.235" in page and "x: &lt;y&gt;" in page
    assert "<p>none</p>" in page


def test_software_versions_compare_installed_with_pins():
    pins = provenance.pinned_requirements(REPO / "pyproject.toml")
    versions = provenance.software_versions(pins).set_index("package")
    assert versions.loc["snakemake", "pinned"] != ""
    assert versions.loc["pandas", "installed"] == pd.__version__
    assert versions.loc["pandas", "matches_pin"] in {"yes", "no"}


def test_known_versions_override_the_environment():
    pins = provenance.pinned_requirements(REPO / "pyproject.toml")
    versions = provenance.software_versions(pins, {"snakemake": "0.0.1"}).set_index("package")
    assert versions.loc["snakemake", "installed"] == "0.0.1"
    assert versions.loc["snakemake", "matches_pin"] == "no"
