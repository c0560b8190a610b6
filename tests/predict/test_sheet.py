"""The predict sample sheet: what a user may write, and the one-line refusals of what cannot be rated."""

from __future__ import annotations

from pathlib import Path

import pytest

from ranoflow.predict.sheet import SheetError, follow_ups, missing_references, read_sheet, study_key


def study(root: Path, patient: str, week: str, modalities=("CT1", "FLAIR")) -> Path:
    folder = root / "Imaging" / patient / week
    folder.mkdir(parents=True)
    for modality in modalities:
        (folder / f"{modality}.nii.gz").write_bytes(b"")
    return folder


def write(path: Path, rows: list[str], header: str = "follow_up\trole\tfolder\tage") -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_a_sheet_names_each_follow_ups_studies_with_folders_relative_to_it(tmp_path: Path) -> None:
    study(tmp_path, "Patient-101", "week-010")
    study(tmp_path, "Patient-101", "week-020")
    sheet = read_sheet(write(tmp_path / "sheet.tsv", [
        "P101-w20\tcurrent\tImaging/Patient-101/week-020\t61",
        "P101-w20\tprevious \tImaging/Patient-101/week-010\t",
    ]))
    assert follow_ups(sheet) == {"P101-w20": {"current": "Patient-101_week-020", "previous": "Patient-101_week-010"}}
    assert Path(sheet["folder"].iloc[0]).is_absolute()
    assert study_key("/x/Patient 7/week-003-1") == "Patient_7_week-003-1"


@pytest.mark.parametrize(
    ("rows", "header", "message"),
    [
        (["a\tcurrent\tImaging/Patient-101/week-020"], "follow_up\tstudy\tfolder", "missing column(s) ['role']"),
        (["a\tbaseline_scan\tImaging/Patient-101/week-020"], None, "role 'baseline_scan' is not one of"),
        (["a\tcurrent\tImaging/Patient-101/week-999"], None, "holds no image"),
        (["a\tprevious\tImaging/Patient-101/week-020"], None, "have no `current` study"),
        (["a\tcurrent\tImaging/Patient-101/week-020", "a\tcurrent\tImaging/Patient-101/week-020"], None,
         "names role 'current' twice"),
        ([], None, "no rows"),
    ],
)
def test_an_unusable_sheet_is_refused_in_one_line_naming_the_file(tmp_path: Path, rows, header, message) -> None:
    study(tmp_path, "Patient-101", "week-020")
    path = write(tmp_path / "sheet.tsv", rows, header or "follow_up\trole\tfolder")
    with pytest.raises(SheetError) as error:
        read_sheet(path)
    assert message in str(error.value) and str(path) in str(error.value)
    assert "\n" not in str(error.value)


def test_an_experiment_reading_a_reference_the_sheet_lacks_is_refused(tmp_path: Path) -> None:
    study(tmp_path, "Patient-101", "week-010")
    study(tmp_path, "Patient-101", "week-020")
    sheet = read_sheet(write(tmp_path / "sheet.tsv", [
        "a\tcurrent\tImaging/Patient-101/week-020\t",
        "a\tprevious\tImaging/Patient-101/week-010\t",
    ]))
    assert missing_references(sheet, ["previous"], "sheet.tsv") == ""
    problem = missing_references(sheet, ["baseline", "nadir"], "sheet.tsv")
    assert "follow-up 'a' gives no baseline, nadir study" in problem and "role 'baseline'" in problem
