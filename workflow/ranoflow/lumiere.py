"""Names of the released LUMIERE tree: CSV files and their exact header strings, study sub-paths, labels.

Everything that reads or writes a LUMIERE-shaped tree takes its names from here, so the synthetic
generator and the reader cannot drift apart.
"""

from __future__ import annotations

import re
from pathlib import Path

from ranoflow.vocabulary import MODALITIES

IMAGING_DIR = "Imaging"

RATINGS_CSV = "LUMIERE-ExpertRating-v202211.csv"
COMPLETENESS_CSV = "LUMIERE-datacompleteness.csv"
DEMOGRAPHICS_CSV = "LUMIERE-Demographics_Pathology.csv"

RATING_COLUMN = (
    "Rating (according to RANO, PD: Progressive disease, SD: Stable disease, PR: Partial response, "
    "CR: Complete response, Pre-Op: Pre-Operative, Post-Op: Post-Operative)"
)
RATIONALE_COLUMN = (
    "Rating rationale (CRET: complete resection of the enhancing tumor, PRET: partial resection of "
    "the enhancing tumor, T2-Progr.: T2-Progression, L: Lesion)"
)
RATINGS_HEADER: tuple[str, ...] = (
    "Patient",
    "Date",
    "LessThan3Months",
    "NonMeasurableLesions",
    RATING_COLUMN,
    RATIONALE_COLUMN,
)
# The completeness file calls the study `Timepoint` where the ratings call it `Date`.
COMPLETENESS_HEADER: tuple[str, ...] = ("Patient", "Timepoint", *MODALITIES, "DeepBraTumIA", "HD-GLIO-AUTO")
DEMOGRAPHICS_HEADER: tuple[str, ...] = (
    "Patient",
    "Survival time (weeks)",
    "Sex",
    "Age at surgery (years)",
    "IDH (WT: wild type)",
    "IDH method",
    "MGMT qualitative",
    "MGMT quantitative",
)
PRESENT = "x"  # completeness and LessThan3Months flag

# Per-study sub-paths (relative to Imaging/Patient-NNN/week-WWW[-k]/).
DBT_DIR = "DeepBraTumIA-segmentation"
DBT_SKULLSTRIP_DIR = f"{DBT_DIR}/atlas/skull_strip"
DBT_BRAIN_MASK = f"{DBT_SKULLSTRIP_DIR}/brain_mask.nii.gz"
DBT_SKULLSTRIP: dict[str, str] = {m: f"{DBT_SKULLSTRIP_DIR}/{m.lower()}_skull_strip.nii.gz" for m in MODALITIES}
DBT_SEG = f"{DBT_DIR}/atlas/segmentation/seg_mask.nii.gz"
DBT_VOLUMES = f"{DBT_DIR}/atlas/segmentation/measured_volumes_in_mm3.json"
DBT_NATIVE_SEG = f"{DBT_DIR}/native/segmentation/ct1_seg_mask.nii.gz"
HDGLIO_DIR = "HD-GLIO-AUTO-segmentation"
HDGLIO_SEG = f"{HDGLIO_DIR}/native/segmentation_CT1_origspace.nii.gz"
HDGLIO_REGISTERED_SEG = f"{HDGLIO_DIR}/registered/segmentation.nii.gz"

# DeepBraTumIA labels and the keys of measured_volumes_in_mm3.json, in label order.
DBT_ENHANCING, DBT_NECROTIC, DBT_EDEMA = 1, 2, 3
DBT_VOLUME_KEYS: dict[int, str] = {
    DBT_ENHANCING: "Enhancing_Core",
    DBT_NECROTIC: "Necrotic_NonEnhancing",
    DBT_EDEMA: "Edema_Compartment",
}
# HD-GLIO-AUTO labels.
HDGLIO_NONENHANCING, HDGLIO_ENHANCING = 1, 2

STUDY_PATTERN = re.compile(r"^week-(\d+)(?:-(\d+))?$")
PATIENT_PATTERN = re.compile(r"^Patient-(\d+)$")


def patient_name(number: int) -> str:
    """`Patient-007` for 7."""
    return f"Patient-{number:03d}"


def study_name(week: int, suffix: int | None = None) -> str:
    """`week-044`, or `week-000-2` for the second study of a week."""
    return f"week-{week:03d}" if suffix is None else f"week-{week:03d}-{suffix}"


def study_key(study: str) -> tuple[int, int]:
    """Chronological sort key of a study name: (week, suffix), a missing suffix sorting first."""
    match = STUDY_PATTERN.match(study)
    if match is None:
        raise ValueError(f"not a LUMIERE study name: {study!r}")
    return int(match[1]), int(match[2] or 0)


def study_dir(root: str | Path, patient: str, study: str) -> Path:
    """`<root>/Imaging/<patient>/<study>`."""
    return Path(root) / IMAGING_DIR / patient / study


def image_path(root: str | Path, patient: str, study: str, modality: str) -> Path:
    """Raw image of one modality: `<study dir>/<modality>.nii.gz`."""
    if modality not in MODALITIES:
        raise ValueError(f"unknown modality {modality!r}; expected one of {MODALITIES}")
    return study_dir(root, patient, study) / f"{modality}.nii.gz"


def study_file(root: str | Path, patient: str, study: str, sub_path: str) -> Path:
    """A file below a study folder, e.g. `study_file(root, p, s, DBT_SEG)`."""
    return study_dir(root, patient, study) / sub_path
