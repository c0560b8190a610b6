"""Scorable (current, reference) study pairs from the study index, and why every other study is left out.

Reference rules:
- `previous` (Matoso et al. 2025): the study right before the current one, whatever its own rating.
- `bratpro` (MICCAI 2024 BraTPRO): the latest earlier Post-Op, Post-Op/PD, CR or PR study; SD and PD
  visits do not reset the reference.
In both rules, only earlier studies with at least one modality file can be a reference (an empty folder
cannot be compared with).

Every pair also names the studies an experiment may read besides the current one (`references:`):
`previous` (always the study right before, with images), `reference` (the rule's choice, which names the
pair), `baseline` (the latest earlier Post-Op study, else the first earlier study) and `nadir` (placeholder:
the baseline study until nadir is computed from the enhancing volumes).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Literal

import pandas as pd

from ranoflow.index.studies import EXCLUDED_COLUMNS, HAS_COLUMNS
from ranoflow.tables import read_tsv
from ranoflow.vocabulary import CLASSES, DEMOGRAPHIC_FIELDS, MODALITIES

log = logging.getLogger(__name__)

Reference = Literal["previous", "bratpro"]
BRATPRO_RESETS = ("Post-Op", "Post-Op/PD", "CR", "PR")
PAIR_COLUMNS = [
    "id",
    "patient",
    "current",
    "previous",
    "reference",
    "baseline",
    "nadir",
    "label",
    "weeks_between",
    "modalities",
    *DEMOGRAPHIC_FIELDS,
    "less_than_3_months",
    "previous_rating",
]


def pair_id(patient: str, current: str, previous: str) -> str:
    """Stable pair id, e.g. 'Patient-001_week-044_vs_week-032'."""
    return f"{patient}_{current}_vs_{previous}"


def read_studies(path: str) -> pd.DataFrame:
    """studies.tsv with its integer columns typed."""
    studies = read_tsv(path)
    integer_columns = ["week", "order", "less_than_3_months", "has_rating_row", *HAS_COLUMNS]
    return studies.astype({column: int for column in integer_columns})


def _exclusion_reason(study: pd.Series, images: Sequence[str], exclude_less_than_3_months: bool) -> str | None:
    """Why a study cannot be the current study of a pair, judged on the study alone (None: it can)."""
    if not study["has_rating_row"]:
        return "no rating row"
    if study["rating"] == "":
        return "rating empty"
    if study["rating"] not in CLASSES:
        return f"rating {study['rating']}"
    if exclude_less_than_3_months and study["less_than_3_months"]:
        return "rated within 3 months after radiotherapy (LessThan3Months)"
    if not images:
        return "no modality files"
    return None


def _reference(earlier: list[tuple[pd.Series, list[str]]], rule: Reference) -> pd.Series | None:
    """The latest earlier study that the rule accepts as reference, or None."""
    for study, images in reversed(earlier):
        if images and (rule == "previous" or study["rating"] in BRATPRO_RESETS):
            return study
    return None


def _baseline(earlier: list[tuple[pd.Series, list[str]]]) -> pd.Series | None:
    """The latest earlier Post-Op study with images, else the first earlier study with images."""
    with_images = [study for study, images in earlier if images]
    post_op = [study for study in with_images if study["rating"] in ("Post-Op", "Post-Op/PD")]
    return (post_op or with_images or [None])[-1 if post_op else 0]


def build_pairs(
    studies: pd.DataFrame,
    orphans: pd.DataFrame,
    demographics: pd.DataFrame,
    reference: Reference = "previous",
    modalities: Sequence[str] = MODALITIES,
    exclude_less_than_3_months: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(pairs, excluded): every scorable pair, and (patient, study, reason) for every other study."""
    if reference not in ("previous", "bratpro"):
        raise ValueError(f"unknown reference rule {reference!r} (previous or bratpro)")
    modalities = [modality for modality in MODALITIES if modality in modalities]
    no_reference = {
        "previous": "no earlier study with images",
        "bratpro": "no earlier Post-Op/CR/PR study with images (bratpro reference)",
    }[reference]
    pairs, excluded = [], []
    for patient, patient_studies in studies.sort_values(["patient", "order"]).groupby("patient", sort=True):
        earlier: list[tuple[pd.Series, list[str]]] = []
        for _, study in patient_studies.iterrows():
            images = [modality for modality in modalities if study[f"has_{modality}"]]
            reason = _exclusion_reason(study, images, exclude_less_than_3_months)
            ref = None if reason else _reference(earlier, reference)
            shared = [] if ref is None else [modality for modality in images if ref[f"has_{modality}"]]
            if reason is None and ref is None:
                reason = no_reference
            elif reason is None and not shared:
                reason = "no modality shared with the reference study"
            if reason is None:
                pairs.append(
                    {
                        "id": pair_id(str(patient), study["study"], ref["study"]),
                        "patient": patient,
                        "current": study["study"],
                        "previous": _reference(earlier, "previous")["study"],
                        "reference": ref["study"],
                        "baseline": _baseline(earlier)["study"],
                        "nadir": _baseline(earlier)["study"],
                        "label": study["rating"],
                        "weeks_between": int(study["week"]) - int(ref["week"]),
                        "modalities": ",".join(shared),
                        "less_than_3_months": int(study["less_than_3_months"]),
                        "previous_rating": ref["rating"],
                    }
                )
            else:
                excluded.append({"patient": patient, "study": study["study"], "reason": reason})
            earlier.append((study, images))

    pairs_table = pd.DataFrame(pairs, columns=[c for c in PAIR_COLUMNS if c not in DEMOGRAPHIC_FIELDS])
    pairs_table = _join_demographics(pairs_table, demographics)[PAIR_COLUMNS]
    excluded_table = pd.concat(
        [pd.DataFrame(excluded, columns=EXCLUDED_COLUMNS), orphans[EXCLUDED_COLUMNS]], ignore_index=True
    )
    return pairs_table, excluded_table.sort_values(["patient", "study"], kind="stable").reset_index(drop=True)


def _join_demographics(pairs: pd.DataFrame, demographics: pd.DataFrame) -> pd.DataFrame:
    known = set(demographics["patient"])
    missing = sorted(set(pairs["patient"]) - known)
    if missing:
        log.warning("%d paired patient(s) without a demographics row: %s", len(missing), ", ".join(missing))
    joined = pairs.merge(demographics[["patient", *DEMOGRAPHIC_FIELDS]], on="patient", how="left")
    return joined.fillna({column: "" for column in DEMOGRAPHIC_FIELDS})
