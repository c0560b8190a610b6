"""The LUMIERE reader on a fixture carrying every quirk of the released data (tests/lumiere_fixture.py)."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest
from lumiere_fixture import QUIRK_STUDIES, plain_studies, write_lumiere_fixture

from ranoflow import lumiere
from ranoflow.index.demographics import read_demographics
from ranoflow.index.studies import (
    STUDY_COLUMNS,
    DatasetError,
    Index,
    build_index,
    normalise_rating,
    study_sort_key,
)


def index_of(root: Path) -> Index:
    return build_index(root, root / lumiere.RATINGS_CSV, root / lumiere.COMPLETENESS_CSV)


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_lumiere_fixture(tmp_path_factory.mktemp("lumiere"))


@pytest.fixture(scope="module")
def index(tree: Path) -> Index:
    return index_of(tree)


def study(index: Index, patient: str, name: str) -> pd.Series:
    rows = index.studies[(index.studies["patient"] == patient) & (index.studies["study"] == name)]
    assert len(rows) == 1, f"{patient} {name}: {len(rows)} rows"
    return rows.iloc[0]


def test_one_row_per_study_folder_with_contract_columns(index: Index) -> None:
    folders = {(p, s) for p, s, modalities, _ in QUIRK_STUDIES + plain_studies(4) if modalities is not None}
    assert list(index.studies.columns) == STUDY_COLUMNS
    assert set(zip(index.studies["patient"], index.studies["study"])) == folders
    assert len(index.studies) == len(folders)


def test_same_week_studies_ordered_by_week_then_suffix(index: Index) -> None:
    patient = index.studies[index.studies["patient"] == "Patient-001"]
    assert patient["study"].tolist()[:3] == ["week-000-1", "week-000-2", "week-003"]
    assert patient["order"].tolist() == list(range(len(patient)))
    assert patient["week"].tolist()[:3] == [0, 0, 3]
    assert study_sort_key("week-000-2") == (0, 2) and study_sort_key("week-044") == (44, 0)
    assert study_sort_key("notes") is None


def test_ratings_normalised(index: Index) -> None:
    assert study(index, "Patient-001", "week-000-2")["rating"] == "Post-Op"  # 'Post-Op ' in the CSV
    assert study(index, "Patient-001", "week-010")["rating"] == "PD"  # ' PD'
    assert study(index, "Patient-001", "week-040")["rating"] == "None"
    assert study(index, "Patient-002", "week-002")["rating"] == "Post-Op/PD"
    assert study(index, "Patient-002", "week-040")["rating"] == ""
    assert study(index, "Patient-002", "week-040")["has_rating_row"] == 1


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Post-Op ", "Post-Op"),
        ("post-op", "Post-Op"),
        ("Post-Op / PD", "Post-Op/PD"),
        (" cr", "CR"),
        ("None", "None"),
        ("", ""),
        ("Pseudo", "Pseudo"),
    ],
)
def test_normalise_rating(raw: str, expected: str) -> None:
    assert normalise_rating(raw) == expected


def test_less_than_3_months_and_rationales(index: Index) -> None:
    flagged = index.studies[index.studies["less_than_3_months"] == 1]
    assert list(zip(flagged["patient"], flagged["study"])) == [("Patient-001", "week-003")]
    assert study(index, "Patient-001", "week-003")["rationale"] == "within 3 months after RT, not PD"
    assert study(index, "Patient-001", "week-040")["rationale"] == "Not a timepoint for RANO measurement"


def test_folder_without_rating_row(index: Index) -> None:
    row = study(index, "Patient-002", "week-030")
    assert row["has_rating_row"] == 0 and row["rating"] == "" and row["less_than_3_months"] == 0
    assert index.anomalies["study folder without rating row"] == 1


def test_rating_rows_without_folder_are_orphans(index: Index) -> None:
    orphans = set(zip(index.orphans["patient"], index.orphans["study"], index.orphans["reason"]))
    assert orphans == {
        ("Patient-002", "week-022", "no study folder for rating row"),
        ("Patient-004", "week-010", "no study folder for rating row"),
    }
    assert index.anomalies["no study folder for rating row"] == 2


def test_modality_presence_from_disk(index: Index, tree: Path) -> None:
    partial = study(index, "Patient-002", "week-035")
    assert [partial[f"has_{m}"] for m in ("CT1", "T1", "T2", "FLAIR")] == [1, 1, 0, 0]
    assert partial["path_T2"] == "" and partial["path_FLAIR"] == ""
    assert Path(partial["path_CT1"]) == lumiere.image_path(tree, "Patient-002", "week-035", "CT1")
    assert partial["seg_deepbratumia"] == "" and partial["dbt_skullstrip_dir"] == ""
    empty = study(index, "Patient-003", "week-000")
    assert [empty[f"has_{m}"] for m in ("CT1", "T1", "T2", "FLAIR")] == [0, 0, 0, 0]


def test_unreadable_file_counts_as_missing(index: Index) -> None:
    row = study(index, "Patient-003", "week-012")
    assert row["has_CT1"] == 0 and row["path_CT1"] == "" and row["has_T1"] == 1
    assert index.anomalies["unreadable modality file (counted as missing)"] == 1


def test_segmentation_paths(index: Index, tree: Path) -> None:
    row = study(index, "Patient-001", "week-010")
    assert Path(row["seg_deepbratumia"]) == lumiere.study_file(tree, "Patient-001", "week-010", lumiere.DBT_SEG)
    assert Path(row["seg_hdglio"]) == lumiere.study_file(tree, "Patient-001", "week-010", lumiere.HDGLIO_SEG)
    assert Path(row["dbt_skullstrip_dir"]).is_dir()


def test_anomalies_counted(index: Index) -> None:
    assert index.anomalies["duplicate rating row with the same rating (collapsed to one)"] == 1
    assert index.anomalies["completeness CSV disagrees with disk (CT1)"] == 1
    assert index.anomalies["completeness CSV disagrees with disk (FLAIR)"] == 1
    assert index.anomalies["completeness row without study folder"] == 2
    assert index.anomalies[f"{lumiere.RATINGS_CSV}: value with surrounding spaces (stripped)"] == 2


def test_stray_folders_ignored(tmp_path: Path) -> None:
    root = write_lumiere_fixture(tmp_path, n_plain=0)
    (root / "Imaging" / "Patient-001" / "week-010" / "extra").mkdir()
    (root / "Imaging" / "Patient-001" / "notes").mkdir()
    (root / "Imaging" / "scratch").mkdir()
    result = index_of(root)
    assert "notes" not in set(result.studies["study"]) and "scratch" not in set(result.studies["patient"])
    assert result.anomalies["folder that is not a study (ignored)"] == 1
    assert result.anomalies["folder under Imaging/ that is not a patient (ignored)"] == 1


def _rewrite_csv(path: Path, drop: str | None = None) -> None:
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    keep = [i for i, name in enumerate(rows[0]) if name.strip().split(" (")[0] != drop]
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows([[row[i] for i in keep] for row in rows])


@pytest.mark.parametrize(
    ("csv_name", "column"),
    [(lumiere.RATINGS_CSV, "Date"), (lumiere.RATINGS_CSV, "Rating"), (lumiere.COMPLETENESS_CSV, "Timepoint")],
)
def test_missing_column_names_file_and_column(tmp_path: Path, csv_name: str, column: str) -> None:
    root = write_lumiere_fixture(tmp_path, n_plain=0)
    _rewrite_csv(root / csv_name, drop=column)
    with pytest.raises(DatasetError, match=rf"{csv_name}.*'{column}'"):
        index_of(root)


def test_missing_csv_names_file(tmp_path: Path) -> None:
    root = write_lumiere_fixture(tmp_path, n_plain=0)
    (root / lumiere.COMPLETENESS_CSV).unlink()
    with pytest.raises(DatasetError, match=lumiere.COMPLETENESS_CSV):
        index_of(root)
    with pytest.raises(DatasetError, match="Sex"):
        _rewrite_csv(root / lumiere.DEMOGRAPHICS_CSV, drop="Sex")
        read_demographics(root / lumiere.DEMOGRAPHICS_CSV)


def test_crlf_and_bom_csvs_read_the_same(tmp_path: Path) -> None:
    plain = write_lumiere_fixture(tmp_path / "plain", n_plain=2)
    windows = write_lumiere_fixture(tmp_path / "windows", n_plain=2)
    for name in (lumiere.RATINGS_CSV, lumiere.COMPLETENESS_CSV, lumiere.DEMOGRAPHICS_CSV):
        text = (windows / name).read_text()
        (windows / name).write_bytes(b"\xef\xbb\xbf" + text.replace("\r\n", "\n").replace("\n", "\r\n").encode())
    expected, got = index_of(plain), index_of(windows)
    paths = lambda table: table.replace(str(plain), str(windows), regex=True)  # noqa: E731
    pd.testing.assert_frame_equal(paths(expected.studies), got.studies)
    pd.testing.assert_frame_equal(paths(expected.orphans), got.orphans)
    pd.testing.assert_frame_equal(read_demographics(plain / lumiere.DEMOGRAPHICS_CSV),
                                  read_demographics(windows / lumiere.DEMOGRAPHICS_CSV))


def test_a_header_only_ratings_csv_is_named_as_such(tmp_path: Path) -> None:
    root = write_lumiere_fixture(tmp_path, n_plain=1)
    path = root / lumiere.RATINGS_CSV
    path.write_text(path.read_text().splitlines()[0] + "\n")
    with pytest.raises(DatasetError) as error:
        index_of(root)
    assert str(error.value) == f"{path}: has a header but no rating rows; replace it with the released LUMIERE CSV"


def test_empty_csv_names_the_file(tmp_path: Path) -> None:
    root = write_lumiere_fixture(tmp_path, n_plain=0)
    (root / lumiere.RATINGS_CSV).write_text("")
    with pytest.raises(DatasetError, match=rf"{lumiere.RATINGS_CSV}: empty file"):
        index_of(root)
