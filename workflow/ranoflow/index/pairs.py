"""Scorable (current, reference) study pairs from the study index, and why every other study is left out.

Reference rules (`index: reference`):
- `previous` (Matoso et al. 2025): the study right before the current one, whatever its own rating.
- `bratpro` (MICCAI 2024 BraTPRO): the latest earlier Post-Op, Post-Op/PD, CR or PR study; SD and PD
  visits do not reset the reference.
- `nadir` (RANO): the earlier study with the smallest enhancing tumour since the baseline (the latest Post-Op
  or Post-Op/PD study), measured on the segmentations (study_volumes.tsv), never taken from a rating.
Only earlier studies with at least one modality file can be a reference (an empty folder cannot be compared
with). Every pair row also names its `previous`, `baseline` and `nadir` study, whatever rule chose it.

A study the reader could not place in the chain - a folder with an unparseable name, a rating row without a
folder, a rated folder without readable images - breaks it: a study is not paired across it (unless
`pair_across_gaps`), since its rating may refer to the missing study.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import pandas as pd

from ranoflow.index.studies import CONFLICTING_RATINGS, EXCLUDED_COLUMNS, HAS_COLUMNS, lenient_key
from ranoflow.lumiere import study_key
from ranoflow.tables import read_tsv
from ranoflow.vocabulary import CLASSES, DEMOGRAPHIC_FIELDS, MODALITIES

log = logging.getLogger(__name__)

Reference = Literal["previous", "bratpro", "nadir"]
REFERENCES: tuple[str, ...] = ("previous", "bratpro", "nadir")
BRATPRO_RESETS = ("Post-Op", "Post-Op/PD", "CR", "PR")
BASELINE_RATINGS = ("Post-Op", "Post-Op/PD")
PAIR_COLUMNS = [
    "id",
    "patient",
    "current",
    "previous",
    "label",
    "weeks_between",
    "modalities",
    *DEMOGRAPHIC_FIELDS,
    "less_than_3_months",
    "previous_rating",
    "reference",
    "baseline",
    "nadir",
]
NO_REFERENCE = {
    "previous": "no earlier study with images",
    "bratpro": "no earlier Post-Op/CR/PR study with images (bratpro reference)",
    "nadir": "no earlier study with images and an enhancing volume since baseline (nadir reference)",
}


def pair_id(patient: str, current: str, reference: str) -> str:
    """Stable pair id, e.g. 'Patient-001_week-044_vs_week-032'."""
    return f"{patient}_{current}_vs_{reference}"


def read_studies(path: str) -> pd.DataFrame:
    """studies.tsv with its integer columns typed."""
    studies = read_tsv(path)
    integer_columns = ["week", "order", "less_than_3_months", "has_rating_row", *HAS_COLUMNS]
    return studies.astype({column: int for column in integer_columns})


@dataclass(frozen=True)
class Gap:
    """A study the chain is missing: its name, where it falls (None: unknown) and why it is missing."""

    study: str
    key: tuple[int, int] | None
    reason: str


def _exclusion_reason(
    study: pd.Series,
    images: Sequence[str],
    exclude_less_than_3_months: bool,
    exclude_rationales: Sequence[str],
) -> str | None:
    """Why a study cannot be the current study of a pair, judged on the study alone (None: it can)."""
    if not study["has_rating_row"]:
        return "no rating row"
    if study["rating"] == "":
        return "rating empty"
    if study["rating"].startswith(CONFLICTING_RATINGS):
        return study["rating"]
    if study["rating"] not in CLASSES:
        return f"rating {study['rating']}"
    if exclude_less_than_3_months and study["less_than_3_months"]:
        return "rated within 3 months after radiotherapy (LessThan3Months)"
    rationale = str(study.get("rationale", "")).lower()
    for phrase in exclude_rationales:
        if phrase.lower() in rationale:
            return f"rationale mentions {phrase!r}"
    if not images:
        return "no modality files"
    return None


@dataclass(frozen=True, eq=False)  # compared by identity (a row holds a Series)
class Earlier:
    """An earlier study of the patient: its row, its modality files and its enhancing volume (if measured)."""

    study: pd.Series
    images: list[str]
    volume: float | None

    @property
    def name(self) -> str:
        return str(self.study["study"])


def _previous(earlier: list[Earlier]) -> Earlier | None:
    return next((e for e in reversed(earlier) if e.images), None)


def _baseline(earlier: list[Earlier]) -> Earlier | None:
    """The latest Post-Op (or Post-Op/PD) study with images; else the first study with images after Pre-Op."""
    with_images = [e for e in earlier if e.images]
    post_op = [e for e in with_images if e.study["rating"] in BASELINE_RATINGS]
    if post_op:
        return post_op[-1]
    return next((e for e in with_images if e.study["rating"] != "Pre-Op"), None)


def _nadir(earlier: list[Earlier], baseline: Earlier | None) -> Earlier | None:
    """Smallest enhancing volume from the baseline on (the latest of equal ones)."""
    since = earlier[earlier.index(baseline):] if baseline is not None else earlier
    measured = [e for e in since if e.images and e.volume is not None]
    return min(reversed(measured), key=lambda e: e.volume, default=None)


def _reference(earlier: list[Earlier], rule: str, nadir: Earlier | None) -> Earlier | None:
    """The earlier study the rule pairs with, or None."""
    if rule == "nadir":
        return nadir
    for entry in reversed(earlier):
        if entry.images and (rule == "previous" or entry.study["rating"] in BRATPRO_RESETS):
            return entry
    return None


def _gaps_by_patient(studies: pd.DataFrame, orphans: pd.DataFrame) -> dict[str, list[Gap]]:
    """Per patient, the studies missing from the chain: unplaceable folders and rating rows, rated empty folders."""
    gaps: dict[str, list[Gap]] = {}
    for row in orphans.itertuples(index=False):
        gaps.setdefault(row.patient, []).append(Gap(row.study, lenient_key(row.study), row.reason))
    no_images = studies[(studies[HAS_COLUMNS].sum(axis=1) == 0) & (studies["has_rating_row"] == 1)]
    for row in no_images.itertuples(index=False):
        gaps.setdefault(row.patient, []).append(Gap(row.study, study_key(row.study), "rated, no readable image"))
    return gaps


def _gap_between(gaps: list[Gap], start: str, current: str) -> Gap | None:
    """A missing study after `start` and before `current`, or one of unknown date."""
    first, last = study_key(start), study_key(current)
    return next((gap for gap in gaps if gap.key is None or first < gap.key < last), None)


def build_pairs(
    studies: pd.DataFrame,
    orphans: pd.DataFrame,
    demographics: pd.DataFrame,
    reference: Reference = "previous",
    modalities: Sequence[str] = MODALITIES,
    exclude_less_than_3_months: bool = False,
    volumes: dict[tuple[str, str], float] | None = None,
    exclude_rationales: Sequence[str] = (),
    pair_across_gaps: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(pairs, excluded): every scorable pair, and (patient, study, reason) for every other study.

    volumes: (patient, study) -> enhancing volume (study_volumes.tsv); needed by the nadir rule and the
    `nadir` column, which stays empty without it.
    """
    if reference not in REFERENCES:
        raise ValueError(f"unknown reference rule {reference!r} ({', '.join(REFERENCES)})")
    volumes = volumes or {}
    modalities = [modality for modality in MODALITIES if modality in modalities]
    gaps = {} if pair_across_gaps else _gaps_by_patient(studies, orphans)
    pairs, excluded = [], []
    for patient, patient_studies in studies.sort_values(["patient", "order"]).groupby("patient", sort=True):
        earlier: list[Earlier] = []
        for _, study in patient_studies.iterrows():
            images = [modality for modality in modalities if study[f"has_{modality}"]]
            reason = _exclusion_reason(study, images, exclude_less_than_3_months, exclude_rationales)
            previous, baseline = _previous(earlier), _baseline(earlier)
            nadir = _nadir(earlier, baseline)
            ref = None if reason else _reference(earlier, reference, nadir)
            shared = [] if ref is None else [modality for modality in images if ref.study[f"has_{modality}"]]
            if reason is None and ref is None:
                reason = NO_REFERENCE[reference]
            elif reason is None and not shared:
                reason = "no modality shared with the reference study"
            if reason is None:
                # the chain the rule read: from the reference, or for the nadir from the baseline on
                start = baseline if reference == "nadir" and baseline is not None else ref
                gap = _gap_between(gaps.get(str(patient), []), min(start.name, ref.name, key=study_key), study["study"])
                if gap is not None:
                    reason = f"chain broken by {gap.study!r} ({gap.reason}) between the reference and this study"
            if reason is None:
                pairs.append(
                    {
                        "id": pair_id(str(patient), study["study"], ref.name),
                        "patient": patient,
                        "current": study["study"],
                        "previous": previous.name,
                        "label": study["rating"],
                        "weeks_between": int(study["week"]) - int(ref.study["week"]),
                        "modalities": ",".join(shared),
                        "less_than_3_months": int(study["less_than_3_months"]),
                        "previous_rating": previous.study["rating"],
                        "reference": ref.name,
                        "baseline": "" if baseline is None else baseline.name,
                        "nadir": "" if nadir is None else nadir.name,
                    }
                )
            else:
                excluded.append({"patient": patient, "study": study["study"], "reason": reason})
            earlier.append(Earlier(study, images, volumes.get((str(patient), str(study["study"])))))

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
