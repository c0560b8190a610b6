"""A tiny LUMIERE-shaped tree carrying every quirk of the released data that the reader must survive.

Quirks (see tests/index/test_study_index.py for what the reader must make of each):
- ratings with surrounding spaces ('Post-Op ', ' PD'), 'None', empty and 'Post-Op/PD' ratings;
- LessThan3Months = 'x'; rationales mentioning '3 months', 'RANO' and holding commas;
- `Date` in the ratings CSV vs `Timepoint` in the completeness CSV, headers with stray spaces;
- rating rows without a study folder (also a patient with no folder at all), study folders without a
  rating row, a duplicate rating row, a blank row, a folder with no modality file at all, missing modality files, a
  zero-byte (unreadable) modality file, completeness CSV rows that disagree with the disk;
- same-week studies week-000-1/week-000-2 (listed out of order in the CSVs);
- a patient without a demographics row, demographics with 'na' values.
"""

from __future__ import annotations

import csv
from pathlib import Path

import nibabel as nib
import numpy as np

from ranoflow import lumiere
from ranoflow.vocabulary import MODALITIES

# Header strings as released; a stray trailing space on one header as a quirk of its own.
RATINGS_HEADER = [f"{name} " if name == "LessThan3Months" else name for name in lumiere.RATINGS_HEADER]
ALL = MODALITIES

# (patient, study, modalities on disk, rating row or None: (LessThan3Months, rating, rationale))
QUIRK_STUDIES = [
    ("Patient-001", "week-000-2", ALL, ("", "Post-Op ", "")),
    ("Patient-001", "week-000-1", ALL, ("", "Pre-Op", "")),
    ("Patient-001", "week-003", ALL, ("x", "SD", "within 3 months after RT, not PD")),
    ("Patient-001", "week-010", ALL, ("", " PD", "L1 increase > 25%, new lesion")),
    ("Patient-001", "week-020", ALL, ("", "PR", "L1 decrease")),
    ("Patient-001", "week-030", ALL, ("", "SD", "")),
    ("Patient-001", "week-040", ALL, ("", "None", "Not a timepoint for RANO measurement")),
    ("Patient-002", "week-000", ALL, ("", "Pre-Op", "")),
    ("Patient-002", "week-002", ALL, ("", "Post-Op/PD", "PRET, residual grows")),
    ("Patient-002", "week-008", ALL, ("", "CR", "")),
    ("Patient-002", "week-015", ALL, ("", "SD", "")),
    ("Patient-002", "week-022", None, ("", "PD", "rating row without folder")),
    ("Patient-002", "week-030", ALL, None),
    ("Patient-002", "week-035", ("CT1", "T1"), ("", "PD", "T2-Progr.")),
    ("Patient-002", "week-040", ALL, ("", "", "")),
    ("Patient-003", "week-000", (), ("", "Post-Op", "CRET")),
    ("Patient-003", "week-005", ALL, ("", "SD", "")),
    ("Patient-003", "week-012", ALL, ("", "PD", "")),
    ("Patient-003", "week-020", ALL, ("", "PD", "")),
    ("Patient-004", "week-010", None, ("", "PD", "patient without any folder")),
]
EMPTY_FILE = ("Patient-003", "week-012", "CT1")  # written as a zero-byte file
DUPLICATE_ROW = ("Patient-002", "week-015", ("", "SD", "duplicate row"))
# completeness CSV claims these present although they are not on disk
COMPLETENESS_CLAIMS = {("Patient-002", "week-035", "FLAIR"), ("Patient-003", "week-012", "CT1")}
PLAIN_RATINGS = ("SD", "PR", "PD", "CR")
DEMOGRAPHICS = {
    "Patient-001": ["120", "male", "63.5", "WT", "NGS", "methylated", "0.3"],
    "Patient-002": ["80", "female", "45", "Mutated", "IHC", "not methylated", "0.05"],
    "Patient-004": ["na", "na", "na", "na", "na", "na", "na"],
}


def plain_studies(n_plain: int) -> list[tuple[str, str, tuple[str, ...], tuple[str, str, str] | None]]:
    """Quirk-free patients Patient-101.. : Pre-Op, Post-Op, then four rated studies (rotating labels)."""
    studies = []
    for i in range(n_plain):
        patient = f"Patient-{101 + i:03d}"
        studies += [(patient, "week-000", ALL, ("", "Pre-Op", "")), (patient, "week-002", ALL, ("", "Post-Op", ""))]
        for j in range(4):
            rating = PLAIN_RATINGS[(i + j) % len(PLAIN_RATINGS)]
            studies.append((patient, f"week-{10 * (j + 1):03d}", ALL, ("", rating, "")))
    return studies


def _write_nifti(path: Path, value: int = 1) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.full((2, 2, 2), value, dtype=np.uint8), np.eye(4)), path)


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def write_lumiere_fixture(root: Path, n_plain: int = 4) -> Path:
    """Write the tree under root (Imaging/ + the three released CSVs) and return root."""
    root = Path(root)
    studies = QUIRK_STUDIES + plain_studies(n_plain)
    ratings, completeness = [], []
    for patient, study, modalities, rating in studies:
        if rating is not None:
            flag, value, rationale = rating
            ratings.append([patient, study, flag, "", value, rationale])
        if modalities is None:
            completeness.append([patient, study, "x", "x", "x", "x", "", ""])
            continue
        folder = lumiere.study_dir(root, patient, study)
        folder.mkdir(parents=True, exist_ok=True)
        for modality in modalities:
            if (patient, study, modality) == EMPTY_FILE:
                (folder / f"{modality}.nii.gz").touch()
            else:
                _write_nifti(folder / f"{modality}.nii.gz")
        complete = len(modalities) == len(ALL) and (patient, study, "CT1") != EMPTY_FILE
        if complete:
            _write_nifti(folder / lumiere.DBT_SEG, 2)
            for sub_path in lumiere.DBT_SKULLSTRIP.values():
                _write_nifti(folder / sub_path)
            _write_nifti(folder / lumiere.HDGLIO_SEG, 2)
        marks = [
            "x" if modality in modalities or (patient, study, modality) in COMPLETENESS_CLAIMS else ""
            for modality in ALL
        ]
        completeness.append([patient, study, *marks, "x" if complete else "", "x" if complete else ""])
    patient, study, (flag, value, rationale) = DUPLICATE_ROW
    ratings += [[patient, study, flag, "", value, rationale], [""] * len(RATINGS_HEADER)]

    _write_csv(root / lumiere.RATINGS_CSV, RATINGS_HEADER, ratings)
    _write_csv(root / lumiere.COMPLETENESS_CSV, list(lumiere.COMPLETENESS_HEADER), completeness)
    patients = sorted({patient for patient, *_ in studies} - {"Patient-003"})
    demographics = [
        [p, *DEMOGRAPHICS.get(p, ["100", "female", "55", "WT", "NGS", "methylated", "0.2"])] for p in patients
    ]
    _write_csv(root / lumiere.DEMOGRAPHICS_CSV, list(lumiere.DEMOGRAPHICS_HEADER), demographics)
    return root
