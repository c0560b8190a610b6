"""The three released CSV files of a synthetic LUMIERE tree, with the released headers and quirks."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from ranoflow import lumiere
from ranoflow.dataset.course import PatientPlan
from ranoflow.vocabulary import MODALITIES


def ratings_table(plans: Sequence[PatientPlan]) -> pd.DataFrame:
    """One row per rated study (and per orphan rating), chronological within each patient."""
    rows = []
    for plan in plans:
        entries = [
            (s.name, s.less_than_3_months, s.rating, s.rationale) for s in plan.studies if s.rating is not None
        ]
        entries += [(study, False, rating, rationale) for study, rating, rationale in plan.orphan_ratings]
        for study, early, rating, rationale in sorted(entries, key=lambda e: lumiere.study_key(e[0])):
            rows.append([plan.patient, study, lumiere.PRESENT if early else "", "", rating, rationale])
    return pd.DataFrame(rows, columns=list(lumiere.RATINGS_HEADER))


def completeness_table(plans: Sequence[PatientPlan]) -> pd.DataFrame:
    """One row per study folder; `x` where the modality file (or segmentation folder) exists."""
    rows = []
    for plan in plans:
        for study in plan.studies:
            complete = not study.missing
            flags = [lumiere.PRESENT if m in study.modalities else "" for m in MODALITIES]
            rows.append([plan.patient, study.name, *flags, *([lumiere.PRESENT if complete else ""] * 2)])
    return pd.DataFrame(rows, columns=list(lumiere.COMPLETENESS_HEADER))


def demographics_table(plans: Sequence[PatientPlan]) -> pd.DataFrame:
    return pd.DataFrame(
        [[plan.patient, *plan.demographics.values()] for plan in plans], columns=list(lumiere.DEMOGRAPHICS_HEADER)
    )


TRUTH_COLUMNS = [
    "patient", "study", "week", "rating", "csv_rating", "enhancing_mm3", "n_lesions", "new_lesion",
    "less_than_3_months", "pseudo_progression", "baseline", "nadir",
]  # fmt: skip


def truth_table(plans: Sequence[PatientPlan]) -> pd.DataFrame:
    """The generator's truth, one row per study folder: the RANO rating its course gives (Pre-Op and
    Post-Op for the first two), the planned enhancing volume, and the baseline and nadir study of each
    follow-up (empty for the first two)."""
    rows = [
        [
            plan.patient, s.name, s.week, s.change, "" if s.rating is None else s.rating,
            round(s.tumour.enhancing, 1), len(s.tumour.lesions), int(s.new_lesion), int(s.less_than_3_months),
            int(s.pseudo_progression), s.baseline, s.nadir,
        ]  # fmt: skip
        for plan in plans
        for s in plan.studies
    ]
    return pd.DataFrame(rows, columns=TRUTH_COLUMNS)


def write_tables(plans: Sequence[PatientPlan], ratings: Path, completeness: Path, demographics: Path) -> None:
    """Write the three CSV files (comma-separated, headers quoted where they hold commas)."""
    for table, path in (
        (ratings_table(plans), ratings),
        (completeness_table(plans), completeness),
        (demographics_table(plans), demographics),
    ):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(path, index=False)
