"""Apply the rule-based RANO responses to every scorable pair and score them on the experiments' folds.

Two rows of summary.tsv: `rano_rules` (history-aware: baseline and nadir from the patient's history) and
`rano_rules_previous` (the previous scan as the only reference), so the table shows what the reference costs.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import asdict

import numpy as np
import pandas as pd

from ranoflow.baseline.criteria import Assessment, RuleSettings, assess_history, size_of
from ranoflow.baseline.measurements import Segmentation, load_segmentation
from ranoflow.evaluate.experiment_metrics import summarise_predictions
from ranoflow.index.volumes import SEGMENTATION_COLUMN, volume_lookup
from ranoflow.vocabulary import CLASSES

log = logging.getLogger(__name__)

EXPERIMENT = "rano_rules"
# row name -> the reference the rule reads
RULES: dict[str, str] = {"rano_rules": "history", "rano_rules_previous": "previous"}
PAIR_COLUMNS = ["id", "patient", "current", "previous", "label"]
HISTORY_COLUMNS = ["reference", "baseline", "nadir", "less_than_3_months"]
ASSESSED_COLUMNS = [*PAIR_COLUMNS, *Assessment.__dataclass_fields__]
MISSING_COLUMNS = [*PAIR_COLUMNS, "reason"]


def segmentation_paths(studies: pd.DataFrame, source: str) -> dict[tuple[str, str], str]:
    """(patient, study) -> segmentation path ('' when the study has none)."""
    column = SEGMENTATION_COLUMN[source]
    return {(row.patient, row.study): getattr(row, column) for row in studies.itertuples(index=False)}


def fold_of_pairs(folds: dict) -> dict[str, int]:
    """Pair id -> the fold whose test set holds it."""
    return {pair: entry["fold"] for entry in folds["folds"] for pair in entry["test"]}


def _pair_fields(pair) -> dict[str, str]:
    return {column: getattr(pair, column) for column in PAIR_COLUMNS}


def _roles(pair, reference: str) -> dict[str, str]:
    """Study of each role the rule reads; without a baseline the nadir is the baseline too."""
    if reference == "previous":
        return {"current": pair.current, "previous": pair.previous, "baseline": pair.previous, "nadir": pair.previous}
    nadir = getattr(pair, "nadir", "") or ""
    baseline = getattr(pair, "baseline", "") or nadir
    return {"current": pair.current, "previous": pair.previous, "baseline": baseline, "nadir": nadir}


def _missing_reason(paths: dict[tuple[str, str], str], volumes: dict, patient: str, roles: dict[str, str]) -> str:
    missing = []
    for role, study in roles.items():
        if not study:
            missing.append(f"no {role} study")
        elif not paths.get((patient, study)) or (patient, study) not in volumes:
            missing.append(f"{role} study {study} has no segmentation")
    return "; ".join(dict.fromkeys(missing))


def predict_pairs(
    pairs: pd.DataFrame,
    studies: pd.DataFrame,
    settings: RuleSettings,
    volumes: pd.DataFrame,
    reference: str = "history",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rule-based answer for each pair whose studies all have a segmentation, and the other pairs.

    volumes: study_volumes.tsv (each study's enhancing volume, measured once); reference: 'history'
    (baseline and nadir of pairs.tsv) or 'previous' (the previous scan only).
    """
    paths = segmentation_paths(studies, settings.source)
    volume_of = volume_lookup(volumes)

    # pairs come patient by patient: a few studies' segmentations at a time, not a whole cohort in memory
    @functools.lru_cache(maxsize=16)
    def load(path: str) -> Segmentation:
        return load_segmentation(path, settings.source)

    @functools.lru_cache(maxsize=None)
    def size(patient: str, study: str) -> float:
        return size_of(load(paths[(patient, study)]), volume_of[(patient, study)], settings)

    rows, missing = [], []
    for pair in pairs.sort_values(["patient", "current"]).itertuples(index=False):
        roles = _roles(pair, reference)
        reason = _missing_reason(paths, volume_of, pair.patient, roles)
        if reason:
            missing.append({**_pair_fields(pair), "reason": reason})
            continue
        assessment = assess_history(
            load(paths[(pair.patient, pair.previous)]),
            load(paths[(pair.patient, pair.current)]),
            {role: size(pair.patient, study) for role, study in roles.items()},
            {role: volume_of[(pair.patient, study)] for role, study in roles.items()},
            settings,
            less_than_3_months=str(getattr(pair, "less_than_3_months", "0")) == "1",
        )
        rows.append({**_pair_fields(pair), **assessment.as_dict()})
    log.info("rule-based RANO (%s): %d pairs assessed, %d without segmentation", reference, len(rows), len(missing))
    return pd.DataFrame(rows, columns=ASSESSED_COLUMNS), pd.DataFrame(missing, columns=MISSING_COLUMNS)


def scored_predictions(
    pairs: pd.DataFrame, assessed: pd.DataFrame, folds: dict, missing_prediction: str
) -> pd.DataFrame:
    """One row per pair, with its test fold, the rule's answer (or the fallback) and one-hot probabilities.

    missing_prediction: class given to pairs without segmentation, or 'exclude' to leave them unscored.
    """
    history = [column for column in HISTORY_COLUMNS if column in pairs.columns]
    merged = pairs[PAIR_COLUMNS + history].merge(assessed.drop(columns=PAIR_COLUMNS[1:]), on="id", how="left")
    merged["new_lesions"] = merged["new_lesions"].astype("Int64")
    merged["segmentation"] = np.where(merged["predicted"].isna(), "missing", "ok")
    if missing_prediction != "exclude":
        merged["predicted"] = merged["predicted"].fillna(missing_prediction)
    fold_of = fold_of_pairs(folds)
    merged["fold"] = merged["id"].map(fold_of).astype("Int64")
    for name in CLASSES:
        merged[f"prob_{name}"] = (merged["predicted"] == name).astype(float)
    return merged


def score(
    predictions: pd.DataFrame,
    folds: dict,
    settings: RuleSettings,
    missing_prediction: str,
    bootstrap: int = 1000,
    experiment: str = EXPERIMENT,
) -> dict:
    """results/metrics/rano_rules.json: the experiments' metrics schema (ranoflow.evaluate.experiment_metrics) on the same test folds."""
    scored = predictions.dropna(subset=["predicted"])
    frames = {int(entry["fold"]): scored[scored["id"].isin(entry["test"])] for entry in folds["folds"]}
    info = {
        "ablation": "baseline",
        "protocol": folds.get("protocol"),
        "leaky": False,  # nothing is fitted, so no test pair can leak into it
        "architecture": f"rule-based RANO 2.0 ({settings.method}, reference: "
        f"{'baseline and nadir' if RULES.get(experiment) == 'history' else 'previous scan'})",
        "modalities": "",
        "input": f"{settings.source} segmentation",
        "pretraining": "",
        "clinical": "",
        "settings": {**asdict(settings), "missing_prediction": missing_prediction},
        "n_missing_segmentation": int((predictions["segmentation"] == "missing").sum()),
    }
    doc = summarise_predictions(experiment, {k: v for k, v in frames.items() if len(v)}, info, bootstrap)
    missing = predictions.loc[predictions["segmentation"] == "missing", "id"]
    test = {int(entry["fold"]): entry["test"] for entry in folds["folds"]}
    for entry in doc["folds"]:
        entry["n_missing_segmentation"] = int(missing.isin(test[entry["fold"]]).sum())
    doc["median_balanced_accuracy"] = doc["balanced_accuracy"]["median"]
    return doc
