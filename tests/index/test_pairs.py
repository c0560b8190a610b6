"""Scorable pairs under both reference rules, and the reasons given for every other study."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest
from lumiere_fixture import write_lumiere_fixture

from ranoflow import lumiere
from ranoflow.index.demographics import read_demographics
from ranoflow.index.pairs import PAIR_COLUMNS, build_pairs, pair_id, read_studies
from ranoflow.index.studies import Index, build_index

QUIRK_PATIENTS = ("Patient-001", "Patient-002", "Patient-003", "Patient-004")


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_lumiere_fixture(tmp_path_factory.mktemp("lumiere"))


@pytest.fixture(scope="module")
def index(tree: Path) -> Index:
    return build_index(tree, tree / lumiere.RATINGS_CSV, tree / lumiere.COMPLETENESS_CSV)


@pytest.fixture(scope="module")
def demographics(tree: Path) -> pd.DataFrame:
    return read_demographics(tree / lumiere.DEMOGRAPHICS_CSV)


def pairs_for(index: Index, demographics: pd.DataFrame, **options) -> tuple[pd.DataFrame, pd.DataFrame]:
    return build_pairs(index.studies, index.orphans, demographics, **options)


def quirk_pairs(pairs: pd.DataFrame) -> set[tuple[str, str, str, str]]:
    quirky = pairs[pairs["patient"].isin(QUIRK_PATIENTS)]
    return set(zip(quirky["patient"], quirky["current"], quirky["reference"], quirky["label"]))


def reasons(excluded: pd.DataFrame) -> dict[tuple[str, str], str]:
    quirky = excluded[excluded["patient"].isin(QUIRK_PATIENTS)]
    return {(p, s): r for p, s, r in zip(quirky["patient"], quirky["study"], quirky["reason"])}


COMMON_EXCLUSIONS = {
    ("Patient-001", "week-000-1"): "rating Pre-Op",
    ("Patient-001", "week-000-2"): "rating Post-Op",
    ("Patient-001", "week-040"): "rating None",
    ("Patient-002", "week-000"): "rating Pre-Op",
    ("Patient-002", "week-002"): "rating Post-Op/PD",
    ("Patient-002", "week-022"): "no study folder for rating row",
    ("Patient-002", "week-030"): "no rating row",
    ("Patient-002", "week-040"): "rating empty",
    ("Patient-003", "week-000"): "rating Post-Op",
    ("Patient-004", "week-010"): "no study folder for rating row",
}


def test_previous_rule(index: Index, demographics: pd.DataFrame) -> None:
    pairs, excluded = pairs_for(index, demographics, reference="previous")
    assert quirk_pairs(pairs) == {
        ("Patient-001", "week-003", "week-000-2", "SD"),
        ("Patient-001", "week-010", "week-003", "PD"),
        ("Patient-001", "week-020", "week-010", "PR"),
        ("Patient-001", "week-030", "week-020", "SD"),
        ("Patient-002", "week-008", "week-002", "CR"),
        ("Patient-002", "week-015", "week-008", "SD"),
        ("Patient-002", "week-035", "week-030", "PD"),  # the reference need not be rated
        ("Patient-003", "week-012", "week-005", "PD"),
        ("Patient-003", "week-020", "week-012", "PD"),
    }
    assert reasons(excluded) == COMMON_EXCLUSIONS | {
        ("Patient-003", "week-005"): "no earlier study with images",  # week-000 is an empty folder
    }


def test_bratpro_rule_resets_at_post_op_cr_pr_only(index: Index, demographics: pd.DataFrame) -> None:
    pairs, excluded = pairs_for(index, demographics, reference="bratpro")
    assert quirk_pairs(pairs) == {
        ("Patient-001", "week-003", "week-000-2", "SD"),
        ("Patient-001", "week-010", "week-000-2", "PD"),  # SD at week-003 does not reset
        ("Patient-001", "week-020", "week-000-2", "PR"),  # nor does PD at week-010
        ("Patient-001", "week-030", "week-020", "SD"),  # PR at week-020 does
        ("Patient-002", "week-008", "week-002", "CR"),  # Post-Op/PD resets
        ("Patient-002", "week-015", "week-008", "SD"),
    }
    no_reference = "no earlier Post-Op/CR/PR study with images (bratpro reference)"
    assert reasons(excluded) == COMMON_EXCLUSIONS | {
        # its reference would be week-008, across the rating row week-022 that has no folder
        ("Patient-002", "week-035"): "chain broken by 'week-022' (no study folder for rating row) between the "
        "reference and this study",
        ("Patient-003", "week-005"): no_reference,
        ("Patient-003", "week-012"): no_reference,
        ("Patient-003", "week-020"): no_reference,
    }


@pytest.mark.parametrize("reference", ["previous", "bratpro"])
def test_every_study_is_paired_or_excluded_exactly_once(
    index: Index, demographics: pd.DataFrame, reference: str
) -> None:
    pairs, excluded = pairs_for(index, demographics, reference=reference)
    current = list(zip(pairs["patient"], pairs["current"]))
    dropped = list(zip(excluded["patient"], excluded["study"]))
    folders = set(zip(index.studies["patient"], index.studies["study"]))
    rating_rows = set(zip(index.orphans["patient"], index.orphans["study"]))
    assert len(current) + len(dropped) == len(set(current) | set(dropped))
    assert set(current) | set(dropped) == folders | rating_rows
    assert set(pairs["label"]) <= {"CR", "PR", "SD", "PD"}
    assert pairs["id"].is_unique


def test_pair_columns_and_values(index: Index, demographics: pd.DataFrame) -> None:
    pairs, _ = pairs_for(index, demographics)
    assert list(pairs.columns) == PAIR_COLUMNS
    by_id = pairs.set_index("id")
    row = by_id.loc[pair_id("Patient-002", "week-035", "week-030")]
    assert row["modalities"] == "CT1,T1" and row["weeks_between"] == 5
    assert (row["sex"], row["age"], row["idh"], row["mgmt"]) == ("female", "45", "mutant", "unmethylated")
    assert row["previous_rating"] == ""
    missing_ct1 = by_id.loc["Patient-003_week-012_vs_week-005"]  # zero-byte CT1 in week-012
    assert missing_ct1["modalities"] == "T1,T2,FLAIR"
    assert (missing_ct1["sex"], missing_ct1["age"]) == ("", "")  # no demographics row
    flagged = by_id.loc["Patient-001_week-003_vs_week-000-2"]
    assert flagged["less_than_3_months"] == 1 and flagged["weeks_between"] == 3
    assert by_id.loc["Patient-101_week-010_vs_week-002", "modalities"] == "CT1,T1,T2,FLAIR"


def test_exclude_less_than_3_months(index: Index, demographics: pd.DataFrame) -> None:
    pairs, excluded = pairs_for(index, demographics, exclude_less_than_3_months=True)
    assert "Patient-001_week-003_vs_week-000-2" not in set(pairs["id"])
    assert "Patient-001_week-010_vs_week-003" in set(pairs["id"])  # still a valid reference
    assert reasons(excluded)[("Patient-001", "week-003")].endswith("(LessThan3Months)")


def test_modality_restriction(index: Index, demographics: pd.DataFrame) -> None:
    pairs, excluded = pairs_for(index, demographics, modalities=["FLAIR", "T2"])
    assert set(pairs["modalities"]) == {"T2,FLAIR"}
    assert reasons(excluded)[("Patient-002", "week-035")] == "no modality files"
    only_ct1, excluded = pairs_for(index, demographics, modalities=["CT1"])
    assert reasons(excluded)[("Patient-003", "week-012")] == "no modality files"  # its CT1 is unreadable
    assert "Patient-003_week-020_vs_week-005" in set(only_ct1["id"])


def test_no_shared_modality(index: Index, demographics: pd.DataFrame) -> None:
    studies = index.studies.copy()
    current = (studies["patient"] == "Patient-101") & (studies["study"] == "week-010")
    studies.loc[current, ["has_CT1", "has_T1", "has_T2"]] = 0
    previous = (studies["patient"] == "Patient-101") & (studies["study"] == "week-002")
    studies.loc[previous, "has_FLAIR"] = 0
    _, excluded = build_pairs(studies, index.orphans, demographics)
    reason = excluded.set_index(["patient", "study"]).loc[("Patient-101", "week-010"), "reason"]
    assert reason == "no modality shared with the reference study"


def test_studies_tsv_round_trip(index: Index, demographics: pd.DataFrame, tmp_path: Path) -> None:
    index.studies.to_csv(tmp_path / "studies.tsv", sep="\t", index=False)
    pairs, _ = build_pairs(read_studies(str(tmp_path / "studies.tsv")), index.orphans, demographics)
    expected, _ = pairs_for(index, demographics)
    pd.testing.assert_frame_equal(pairs, expected)


def test_unknown_reference_rule(index: Index, demographics: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="nearest"):
        pairs_for(index, demographics, reference="nearest")


def test_every_pair_names_its_previous_baseline_and_nadir(index: Index, demographics: pd.DataFrame) -> None:
    studies = index.studies[index.studies["patient"] == "Patient-101"]
    sizes = dict(zip(studies["study"], [30000.0, 5000.0, 2000.0, 3000.0, 2500.0, 2900.0]))
    volumes = {("Patient-101", study): size for study, size in sizes.items()}
    for rule in ("previous", "bratpro", "nadir"):
        pairs, _ = pairs_for(index, demographics, reference=rule, volumes=volumes)
        rows = pairs[pairs["patient"] == "Patient-101"].set_index("current")
        assert list(rows["previous"]) == ["week-002", "week-010", "week-020", "week-030"]
        assert set(rows["baseline"]) == {"week-002"}
        assert list(rows["nadir"]) == ["week-002", "week-010", "week-010", "week-010"]
        assert all(rows.index.map(lambda c: f"Patient-101_{c}_vs_") + rows["reference"] == rows["id"])
    nadir_pairs, _ = pairs_for(index, demographics, reference="nadir", volumes=volumes)
    assert "Patient-101_week-040_vs_week-010" in set(nadir_pairs["id"])


def test_rationale_exclusions_give_their_reason(index: Index, demographics: pd.DataFrame) -> None:
    studies = index.studies.copy()
    row = (studies["patient"] == "Patient-101") & (studies["study"] == "week-020")
    studies.loc[row, "rationale"] = "L increased, Less than 3 months after RT"
    pairs, excluded = build_pairs(studies, index.orphans, demographics, exclude_rationales=["less than 3 months"])
    assert "Patient-101_week-020_vs_week-010" not in set(pairs["id"])
    reason = excluded.set_index(["patient", "study"]).loc[("Patient-101", "week-020"), "reason"]
    assert reason == "rationale mentions 'less than 3 months'"


@pytest.mark.parametrize("folder", ["Week-015", "week-015 "])
def test_no_pair_across_an_unparseable_study_folder(tmp_path: Path, demographics: pd.DataFrame, folder: str) -> None:
    tree = write_lumiere_fixture(tmp_path)
    odd = lumiere.study_dir(tree, "Patient-101", "week-010").parent / folder
    odd.mkdir()
    (odd / "CT1.nii.gz").write_bytes((lumiere.image_path(tree, "Patient-101", "week-010", "CT1")).read_bytes())
    index = build_index(tree, tree / lumiere.RATINGS_CSV, tree / lumiere.COMPLETENESS_CSV)
    pairs, excluded = build_pairs(index.studies, index.orphans, demographics)
    ids = set(pairs["id"])
    assert "Patient-101_week-020_vs_week-010" not in ids  # its rating may refer to the unreadable study
    assert "Patient-101_week-030_vs_week-020" in ids  # the chain goes on after it
    reason = excluded.set_index(["patient", "study"]).loc[("Patient-101", "week-020"), "reason"]
    assert reason.startswith(f"chain broken by {folder!r} (study folder with unparseable name)")
    assert (excluded["study"] == folder).sum() == 1  # the folder itself is listed with its reason
    across, _ = build_pairs(index.studies, index.orphans, demographics, pair_across_gaps=True)
    assert "Patient-101_week-020_vs_week-010" in set(across["id"])


def _append_rating_rows(tree: Path, rows: list[list[str]]) -> None:
    with (tree / lumiere.RATINGS_CSV).open("a", newline="") as handle:
        csv.writer(handle).writerows(rows)


def _pairs_and_reasons(tree: Path, demographics: pd.DataFrame) -> tuple[set[str], dict[tuple[str, str], str]]:
    index = build_index(tree, tree / lumiere.RATINGS_CSV, tree / lumiere.COMPLETENESS_CSV)
    pairs, excluded = build_pairs(index.studies, index.orphans, demographics)
    return set(pairs["id"]), dict(zip(zip(excluded["patient"], excluded["study"]), excluded["reason"]))


def test_conflicting_duplicate_ratings_exclude_the_study_with_their_reason(
    tmp_path: Path, demographics: pd.DataFrame, caplog: pytest.LogCaptureFixture
) -> None:
    tree = write_lumiere_fixture(tmp_path, n_plain=2)
    # Patient-101 week-020 is rated PR; a second row says PD, and week-030 (SD) gets an identical second row
    _append_rating_rows(tree, [["Patient-101", "week-020", "", "", "PD", "second reader"],
                               ["Patient-101", "week-030", "", "", "PD", ""]])
    ids, reasons_by_study = _pairs_and_reasons(tree, demographics)
    assert "Patient-101_week-020_vs_week-010" not in ids
    assert reasons_by_study[("Patient-101", "week-020")] == "conflicting duplicate rating rows: 'PD', 'PR'"
    assert "Patient-101_week-030_vs_week-020" in ids  # the excluded study is still a reference
    # an identical duplicate collapses to one row, with a log line
    write_lumiere_fixture(tmp_path / "same", n_plain=2)
    _append_rating_rows(tmp_path / "same", [["Patient-101", "week-020", "", "", "PR", "again"]])
    with caplog.at_level("WARNING"):
        same_ids, _ = _pairs_and_reasons(tmp_path / "same", demographics)
    assert "Patient-101_week-020_vs_week-010" in same_ids
    assert "2 identical rating rows for Patient-101 week-020 (PR), collapsed to one" in caplog.text


@pytest.mark.parametrize(("folder", "rating_row"), [("week-0020", "week-020"), ("week-020", "week-20"),
                                                    ("week-0020", "week-0020")])
def test_a_zero_padded_study_folder_matches_its_rating_row(
    tmp_path: Path, demographics: pd.DataFrame, folder: str, rating_row: str
) -> None:
    tree = write_lumiere_fixture(tmp_path, n_plain=2)
    study = lumiere.study_dir(tree, "Patient-101", "week-020")
    study.rename(study.parent / folder)
    ratings = tree / lumiere.RATINGS_CSV
    ratings.write_text(ratings.read_text().replace("Patient-101,week-020,", f"Patient-101,{rating_row},"))
    ids, reasons_by_study = _pairs_and_reasons(tree, demographics)
    assert f"Patient-101_{folder}_vs_week-010" in ids
    assert f"Patient-101_week-030_vs_{folder}" in ids
    assert {study for patient, study in reasons_by_study if patient == "Patient-101"} == {"week-000", "week-002"}


def test_an_unmatched_folder_and_rating_row_of_one_week_name_each_other(
    tmp_path: Path, demographics: pd.DataFrame
) -> None:
    tree = write_lumiere_fixture(tmp_path, n_plain=2)
    study = lumiere.study_dir(tree, "Patient-101", "week-020")
    study.rename(study.parent / "Week-0020")
    _, reasons_by_study = _pairs_and_reasons(tree, demographics)
    assert reasons_by_study[("Patient-101", "Week-0020")] == (
        "study folder with unparseable name; unmatched, the rating row of its week is 'week-020'")
    assert reasons_by_study[("Patient-101", "week-020")] == (
        "no study folder for rating row; unmatched, the study folder of its week is 'Week-0020'")
