"""Read a LUMIERE tree exactly as released: the three CSV files and the study folders under Imaging/.

Every anomaly of the released data (trailing spaces, `None`/empty/`Post-Op/PD` ratings, rating rows
without a folder, folders without a rating row, missing or unreadable modality files, same-week studies)
is logged and counted; none of them stops the run. A missing CSV file or required column does, with an
error that names the file and the column.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import pandas as pd

from ranoflow.lumiere import (
    DBT_SEG,
    DBT_SKULLSTRIP_DIR,
    HDGLIO_SEG,
    IMAGING_DIR,
    PATIENT_PATTERN,
    PRESENT,
    STUDY_PATTERN,
    study_key,
)
from ranoflow.vocabulary import CLASSES, MODALITIES

log = logging.getLogger(__name__)

# Released headers are matched on their short name (the text before " ("), so the long rating and
# rationale headers need not be copied exactly; values map to the contract's column names.
RATINGS_COLUMNS = {
    "Patient": "patient",
    "Date": "study",
    "LessThan3Months": "less_than_3_months",
    "Rating": "rating",
    "Rating rationale": "rationale",
}
COMPLETENESS_COLUMNS = {"Patient": "patient", "Timepoint": "study"} | {
    **{modality: modality for modality in MODALITIES},
    "DeepBraTumIA": "DeepBraTumIA",
    "HD-GLIO-AUTO": "HD-GLIO-AUTO",
}

# Ratings of the released CSV: the RANO classes and the non-response ratings.
RATINGS = (*CLASSES, "Pre-Op", "Post-Op", "Post-Op/PD", "None")
_RATING_BY_KEY = {re.sub(r"\s+", "", rating).lower(): rating for rating in RATINGS}

HAS_COLUMNS = [f"has_{modality}" for modality in MODALITIES]
FILE_COLUMNS = [
    *HAS_COLUMNS,
    *(f"path_{modality}" for modality in MODALITIES),
    "seg_deepbratumia",
    "seg_hdglio",
    "dbt_skullstrip_dir",
]
STUDY_COLUMNS = [
    "patient",
    "study",
    "week",
    "order",
    "rating",
    "less_than_3_months",
    "rationale",
    "has_rating_row",
    *FILE_COLUMNS,
]
EXCLUDED_COLUMNS = ["patient", "study", "reason"]
# The rating of a study whose rating rows disagree begins with this (followed by the ratings given).
CONFLICTING_RATINGS = "conflicting duplicate rating rows"
# A study name as a person may have typed it: 'Week-009', 'week_9 ', 'week-000-2'.
LENIENT_STUDY = re.compile(r"week[\s_-]*(\d+)(?:[\s_-]+(\d+))?", re.IGNORECASE)


class DatasetError(ValueError):
    """A required file or column of the dataset is missing."""


@dataclass
class Index:
    """studies: one row per study folder; orphans: rating rows that cannot be used (patient, study, reason)."""

    studies: pd.DataFrame
    orphans: pd.DataFrame
    anomalies: Counter[str] = field(default_factory=Counter)


def short_header(header: str) -> str:
    """'Rating (according to RANO, ...)' -> 'Rating'; whitespace stripped."""
    return header.split(" (")[0].strip()


def read_table(path: str | Path, columns: Mapping[str, str], anomalies: Counter[str] | None = None) -> pd.DataFrame:
    """A released CSV as text, headers and values stripped, `columns` (short header -> name) renamed."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        raise DatasetError(f"{path}: empty file, no header row; replace it with the released LUMIERE CSV") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise DatasetError(f"{path}: not a readable CSV ({type(error).__name__}: {error})".replace("\n", " ")) from None
    table.columns = [short_header(str(column)) for column in table.columns]
    missing = [column for column in columns if column not in table.columns]
    if missing:
        raise DatasetError(
            f"{path}: required column(s) {', '.join(map(repr, missing))} missing "
            f"(found {', '.join(map(repr, table.columns))})"
        )
    table = table[list(columns)].rename(columns=columns)
    stripped = table.apply(lambda column: column.str.strip())
    padded = int((stripped != table).to_numpy().sum())
    if padded and anomalies is not None:
        anomalies[f"{path.name}: value with surrounding spaces (stripped)"] += padded
        log.warning("%s: %d value(s) with surrounding spaces, stripped", path, padded)
    return stripped[(stripped != "").any(axis=1)].reset_index(drop=True)


def normalise_rating(value: str) -> str:
    """Canonical rating (CR, PR, SD, PD, Pre-Op, Post-Op, Post-Op/PD, None), '' if empty, else the stripped text."""
    stripped = value.strip()
    return _RATING_BY_KEY.get(re.sub(r"\s+", "", stripped).lower(), stripped)


def is_flagged(value: str) -> int:
    """LessThan3Months and completeness cells: 'x' (any case) or a truthy word means 1."""
    return int(value.strip().lower() in {PRESENT, "1", "yes", "true"})


def study_sort_key(study: str) -> tuple[int, int] | None:
    """(week, suffix) of 'week-WWW[-k]', or None when the name is not a study name."""
    return study_key(study) if STUDY_PATTERN.match(study) else None


def lenient_key(study: str) -> tuple[int, int] | None:
    """Where a badly named study falls in time: (week, suffix), or None when no week can be read."""
    match = LENIENT_STUDY.search(study)
    return None if match is None else (int(match[1]), int(match[2] or 0))


def matching_key(study: str) -> str:
    """The name a study folder and its rating row are matched on: 'week-0047' and 'week-47' are 'week-047'
    (LUMIERE's names differ only in zero padding); a name that is not a study name is its own key."""
    key = study_sort_key(study)
    if key is None:
        return study
    return f"week-{key[0]:03d}" + (f"-{key[1]}" if key[1] else "")


def readable_nifti(path: Path) -> bool:
    """True when the file exists and its NIfTI header can be read (no voxel data is loaded)."""
    if not path.is_file():
        return False
    try:
        nib.load(path)
    except Exception:  # any corrupt or truncated file counts as missing
        return False
    return True


def _study_row(folder: Path, modalities: Iterable[str], anomalies: Counter[str]) -> dict[str, object]:
    row: dict[str, object] = {}
    for modality in MODALITIES:
        path = folder / f"{modality}.nii.gz"
        present = modality in modalities and readable_nifti(path)
        if modality in modalities and path.exists() and not present:
            anomalies["unreadable modality file (counted as missing)"] += 1
            log.warning("%s: unreadable NIfTI, counted as missing", path)
        row[f"has_{modality}"] = int(present)
        row[f"path_{modality}"] = str(path) if present else ""
    dbt_seg, hdglio_seg = folder / DBT_SEG, folder / HDGLIO_SEG
    row["seg_deepbratumia"] = str(dbt_seg) if readable_nifti(dbt_seg) else ""
    row["seg_hdglio"] = str(hdglio_seg) if readable_nifti(hdglio_seg) else ""
    row["dbt_skullstrip_dir"] = str(folder / DBT_SKULLSTRIP_DIR) if (folder / DBT_SKULLSTRIP_DIR).is_dir() else ""
    return row


def scan_studies(root: str | Path, modalities: Iterable[str], anomalies: Counter[str]) -> pd.DataFrame:
    """One row per study folder under root/Imaging, in chronological order per patient."""
    imaging = Path(root) / IMAGING_DIR
    if not imaging.is_dir():
        raise DatasetError(f"{imaging}: imaging folder not found")
    modalities = set(modalities)
    rows = []
    for patient_dir in sorted(p for p in imaging.iterdir() if p.is_dir()):
        if not PATIENT_PATTERN.match(patient_dir.name):
            anomalies["folder under Imaging/ that is not a patient (ignored)"] += 1
            log.warning("%s: not a patient folder, ignored", patient_dir)
            continue
        for study_dir in sorted(p for p in patient_dir.iterdir() if p.is_dir()):
            key = study_sort_key(study_dir.name)
            if key is None:
                anomalies["folder that is not a study (ignored)"] += 1
                log.warning("%s: not a study folder, ignored", study_dir)
                continue
            row = {"patient": patient_dir.name, "study": study_dir.name, "week": key[0], "_suffix": key[1]}
            rows.append(row | _study_row(study_dir, modalities, anomalies))
    studies = pd.DataFrame(rows, columns=["patient", "study", "week", "_suffix"] + FILE_COLUMNS)
    studies = studies.sort_values(["patient", "week", "_suffix"], kind="stable").drop(columns="_suffix")
    studies["order"] = studies.groupby("patient").cumcount()
    return studies.reset_index(drop=True)


def unparseable_folders(root: str | Path) -> pd.DataFrame:
    """(patient, study, reason) of every folder of a patient that is not named like a study ('Week-009',
    'week-009 '): the pairs rule places it by its week where it can and does not pair across it."""
    imaging = Path(root) / IMAGING_DIR
    rows = [
        {"patient": patient.name, "study": folder.name, "reason": "study folder with unparseable name"}
        for patient in sorted(p for p in imaging.iterdir() if p.is_dir() and PATIENT_PATTERN.match(p.name))
        for folder in sorted(p for p in patient.iterdir() if p.is_dir())
        if study_sort_key(folder.name) is None
    ]
    return pd.DataFrame(rows, columns=EXCLUDED_COLUMNS)


def read_ratings(path: str | Path, anomalies: Counter[str]) -> pd.DataFrame:
    """Rating rows (patient, study, rating, less_than_3_months, rationale), normalised, one per study."""
    ratings = read_table(path, RATINGS_COLUMNS, anomalies)
    raw = ratings["rating"]
    ratings = ratings.assign(
        rating=raw.map(normalise_rating), less_than_3_months=ratings["less_than_3_months"].map(is_flagged)
    )
    respelled = int((raw != ratings["rating"]).sum())
    if respelled:
        anomalies["rating spelled differently from its canonical form (normalised)"] += respelled
    unknown = ~ratings["rating"].isin(RATINGS + ("",))
    for value in ratings.loc[unknown, "rating"].unique():
        log.warning("%s: unknown rating %r kept as is (not scorable)", path, value)
        anomalies["unknown rating value (not scorable)"] += int((ratings["rating"] == value).sum())
    ratings["_key"] = ratings["study"].map(matching_key)
    if ratings.empty:
        raise DatasetError(f"{path}: has a header but no rating rows; replace it with the released LUMIERE CSV")
    return _one_row_per_study(ratings, path, anomalies)


def _one_row_per_study(ratings: pd.DataFrame, path: str | Path, anomalies: Counter[str]) -> pd.DataFrame:
    """Duplicate rating rows of a study (same patient and study name) collapse to the first when they agree on
    the rating and LessThan3Months; when they disagree the study keeps one row whose rating names the conflict,
    so it is excluded (never trained on) with that reason."""
    rows = []
    for (patient, study), group in ratings.groupby(["patient", "_key"], sort=False):
        first = group.iloc[0].copy()
        if len(group) > 1:
            ratings_given = sorted(set(group["rating"]))
            flags = set(group["less_than_3_months"])
            if len(ratings_given) == 1 and len(flags) == 1:
                anomalies["duplicate rating row with the same rating (collapsed to one)"] += len(group) - 1
                log.warning("%s: %d identical rating rows for %s %s (%s), collapsed to one",
                            path, len(group), patient, study, first["rating"])
            else:
                anomalies["conflicting duplicate rating rows (study excluded)"] += 1
                given = ", ".join(repr(value) for value in ratings_given)
                first["rating"] = f"{CONFLICTING_RATINGS}: {given}" + (
                    ", LessThan3Months differs" if len(flags) > 1 else "")
                log.warning("%s: %s %s has %d rating rows that disagree (%s): the study is excluded",
                            path, patient, study, len(group), given)
        rows.append(first)
    return pd.DataFrame(rows, columns=ratings.columns).reset_index(drop=True)


def cross_check_completeness(studies: pd.DataFrame, path: str | Path, anomalies: Counter[str]) -> None:
    """Log where the completeness CSV disagrees with the files on disk (the files win)."""
    completeness = read_table(path, COMPLETENESS_COLUMNS, anomalies)
    merged = studies.merge(completeness, on=["patient", "study"], how="outer", indicator=True)
    for row in merged[merged["_merge"] == "right_only"].itertuples():
        anomalies["completeness row without study folder"] += 1
        log.warning("%s: %s %s listed but no study folder", path, row.patient, row.study)
    for row in merged[merged["_merge"] == "left_only"].itertuples():
        anomalies["study folder without completeness row"] += 1
        log.warning("%s: no row for study folder %s %s", path, row.patient, row.study)
    both = merged[merged["_merge"] == "both"]
    on_disk = {
        **{modality: both[f"has_{modality}"].astype(bool) for modality in MODALITIES},
        "DeepBraTumIA": both["seg_deepbratumia"].fillna("") != "",
        "HD-GLIO-AUTO": both["seg_hdglio"].fillna("") != "",
    }
    for column, present in on_disk.items():
        listed = both[column].map(is_flagged).astype(bool)
        disagree = (listed != present).to_numpy()
        for patient, study, in_csv in zip(both["patient"][disagree], both["study"][disagree], listed[disagree]):
            anomalies[f"completeness CSV disagrees with disk ({column})"] += 1
            log.warning(
                "%s: %s %s %s is %s in the CSV, %s on disk (disk wins)",
                path,
                patient,
                study,
                column,
                *(("present", "absent") if in_csv else ("absent", "present")),
            )


def build_index(
    root: str | Path,
    ratings_csv: str | Path,
    completeness_csv: str | Path,
    modalities: Iterable[str] = MODALITIES,
) -> Index:
    """studies.tsv rows (study folders joined with their rating row), and the unusable rating rows and
    study folders (orphans: each with its reason)."""
    anomalies: Counter[str] = Counter()
    studies = scan_studies(root, modalities, anomalies)
    ratings = read_ratings(ratings_csv, anomalies)
    cross_check_completeness(studies, completeness_csv, anomalies)

    studies["_key"] = studies["study"].map(matching_key)
    merged = studies.merge(ratings, on=["patient", "_key"], how="outer", indicator=True, suffixes=("", "_rated"))
    renamed = merged[(merged["_merge"] == "both") & (merged["study"] != merged["study_rated"])]
    for row in renamed.itertuples():
        anomalies["study folder matched to a rating row spelled differently (zero padding)"] += 1
        log.warning("%s: folder %s matched to rating row %s", row.patient, row.study, row.study_rated)
    merged["study"] = merged["study"].fillna(merged["study_rated"])
    orphan_rows = merged[merged["_merge"] == "right_only"]
    unparseable = orphan_rows["study"].map(study_sort_key).isna()
    orphans = pd.DataFrame(
        {
            "patient": orphan_rows["patient"],
            "study": orphan_rows["study"],
            "reason": [
                "rating row with unparseable study name" if bad else "no study folder for rating row"
                for bad in unparseable
            ],
        },
        columns=EXCLUDED_COLUMNS,
    )
    anomalies.update(orphans["reason"])
    orphans = _name_unmatched_pairs(pd.concat([orphans, unparseable_folders(root)], ignore_index=True))

    studies = merged[merged["_merge"] != "right_only"].drop(columns=["_merge", "_key", "study_rated"])
    no_rating_row = studies["rating"].isna()
    anomalies["study folder without rating row"] += int(no_rating_row.sum())
    studies = studies.assign(
        rating=studies["rating"].fillna(""),
        rationale=studies["rationale"].fillna(""),
        less_than_3_months=studies["less_than_3_months"].fillna(0).astype(int),
        **{column: studies[column].astype(int) for column in ["week", "order", *HAS_COLUMNS]},
    )
    studies["has_rating_row"] = (~no_rating_row).astype(int)
    studies = studies.sort_values(["patient", "order"]).reset_index(drop=True)[STUDY_COLUMNS]
    return Index(studies=studies, orphans=orphans, anomalies=anomalies)


def _name_unmatched_pairs(orphans: pd.DataFrame) -> pd.DataFrame:
    """An unmatched folder and an unmatched rating row of one patient that read as the same week
    ('Week-047' and 'week-047') each name the other in their reason, so the fix (a rename) is plain."""
    orphans = orphans.copy()
    weeks = orphans["study"].map(lenient_key)
    folder = orphans["reason"] == "study folder with unparseable name"
    for i in orphans.index[folder]:
        same = orphans.index[~folder & (orphans["patient"] == orphans.at[i, "patient"]) & (weeks == weeks[i])]
        if weeks[i] is None or len(same) == 0:
            continue
        row_name, folder_name = orphans.at[same[0], "study"], orphans.at[i, "study"]
        orphans.at[i, "reason"] += f"; unmatched, the rating row of its week is {row_name!r}"
        orphans.at[same[0], "reason"] += f"; unmatched, the study folder of its week is {folder_name!r}"
    return orphans


def log_summary(title: str, counts: Mapping[str, int]) -> None:
    """One log line per counted reason, so every anomaly shows up in the rule's log."""
    log.info("%s: %d", title, sum(counts.values()))
    for reason, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        if count:
            log.info("  %5d  %s", count, reason)
