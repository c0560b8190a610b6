"""The sample sheet of new follow-ups to rate: which study folder plays which role for each follow-up.

A TSV with one row per (follow-up, study): `follow_up` (a name for the rating row), `role` (`current` or
a reference: previous, reference, baseline, nadir), `folder` (a study folder in the LUMIERE layout, e.g.
`.../Patient-101/week-030` with CT1.nii.gz, T1.nii.gz, T2.nii.gz, FLAIR.nii.gz; relative paths are read
from the sheet's folder), and optional clinical columns (age, sex, idh, mgmt, weeks_between) on the
`current` row. No import heavier than pandas: the Snakefile reads the sheet at parse time.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from ranoflow.lumiere import DBT_SKULLSTRIP
from ranoflow.vocabulary import CLINICAL_FIELDS, MODALITIES, REFERENCES

REQUIRED = ("follow_up", "role", "folder")
ROLES = ("current", *REFERENCES)


class SheetError(ValueError):
    """A sample sheet that cannot be used as it is (the message names the file and row)."""


def study_key(folder: str | Path) -> str:
    """A study's name inside results/predict/<name>/: `<patient folder>_<study folder>`."""
    path = Path(folder)
    return re.sub(r"[^A-Za-z0-9_.-]", "_", f"{path.parent.name}_{path.name}")


def study_images(folder: str | Path, input_mode: str) -> dict[str, str]:
    """{modality: image} the register job reads for a study folder (raw LUMIERE names, or DeepBraTumIA's
    atlas-space skull-stripped images for preprocessing input `deepbratumia`)."""
    names = DBT_SKULLSTRIP if input_mode == "deepbratumia" else {m: f"{m}.nii.gz" for m in MODALITIES}
    return {m: str(Path(folder) / name) for m, name in names.items() if (Path(folder) / name).is_file()}


def read_sheet(path: str | Path, input_mode: str = "raw") -> pd.DataFrame:
    """The sheet with absolute folders and a `key` column per study; SheetError for anything unusable."""
    path = Path(path)
    if not path.is_file():
        raise SheetError(f"{path}: sample sheet not found")
    sheet = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    sheet.columns = [c.strip() for c in sheet.columns]
    missing = [c for c in REQUIRED if c not in sheet.columns]
    if missing:
        raise SheetError(f"{path}: missing column(s) {missing}; a sheet has {list(REQUIRED)} and optional "
                         f"clinical columns {list(CLINICAL_FIELDS)}")
    if sheet.empty:
        raise SheetError(f"{path}: no rows")
    sheet = sheet.map(str.strip)
    for row, entry in enumerate(sheet.to_dict("records"), start=2):
        where = f"{path} line {row}"
        if not entry["follow_up"]:
            raise SheetError(f"{where}: empty follow_up")
        if entry["role"] not in ROLES:
            raise SheetError(f"{where}: role {entry['role']!r} is not one of {list(ROLES)}")
        folder = Path(entry["folder"])
        folder = folder if folder.is_absolute() else (path.parent / folder)
        if not study_images(folder, input_mode):
            raise SheetError(f"{where}: {folder} holds no image of {list(MODALITIES)} (input {input_mode})")
        sheet.loc[row - 2, "folder"] = str(folder.resolve())
    duplicated = sheet[sheet.duplicated(["follow_up", "role"], keep=False)]
    if not duplicated.empty:
        first = duplicated.iloc[0]
        raise SheetError(f"{path}: follow-up {first['follow_up']!r} names role {first['role']!r} twice")
    no_current = sorted(set(sheet["follow_up"]) - set(sheet.loc[sheet["role"] == "current", "follow_up"]))
    if no_current:
        raise SheetError(f"{path}: follow-up(s) {no_current} have no `current` study")
    sheet["key"] = sheet["folder"].map(study_key)
    clash = sheet.drop_duplicates("folder").duplicated("key", keep=False)
    if clash.any():
        raise SheetError(f"{path}: two study folders share the name {sheet.drop_duplicates('folder')[clash]['key'].iloc[0]}"
                         " (<patient folder>_<study folder>); rename one")
    return sheet


def missing_references(sheet: pd.DataFrame, references: list[str], where: str) -> str:
    """'' when every follow-up names each reference study the experiment reads, else one line saying
    which follow-up lacks which role."""
    for follow_up, rows in sheet.groupby("follow_up", sort=True):
        lacking = [ref for ref in references if ref not in set(rows["role"])]
        if lacking:
            return (f"{where}: follow-up {follow_up!r} gives no {', '.join(lacking)} study, which the experiment "
                    f"reads (its references: {references}); add a row with role {lacking[0]!r}")
    return ""


def follow_ups(sheet: pd.DataFrame) -> dict[str, dict[str, str]]:
    """{follow_up: {role: study key}}."""
    return {f: dict(zip(rows["role"], rows["key"])) for f, rows in sheet.groupby("follow_up", sort=True)}


def clinical_record(sheet: pd.DataFrame, follow_up: str) -> dict[str, str]:
    """The clinical columns of a follow-up's `current` row ('' where the sheet has none)."""
    row = sheet[(sheet["follow_up"] == follow_up) & (sheet["role"] == "current")].iloc[0]
    return {field: row.get(field, "") for field in CLINICAL_FIELDS}
