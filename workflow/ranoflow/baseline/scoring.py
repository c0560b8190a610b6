"""Apply the rule-based RANO responses to every scorable pair and score them on the experiments' folds.

Rows of summary.tsv: `rano_rules` (RANO 2.0 arithmetic, history-aware: baseline and nadir from the patient's
history; on the demo the same rule that made the labels, so marked as the oracle), `rano_rules_previous` (the
previous scan as the only reference, so the table shows what the reference costs) and `rano_expert` (RANO 2010
as LUMIERE's raters practised it, ranoflow.baseline.expert_rule). All read study_measures.tsv.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict

import numpy as np
import pandas as pd

from ranoflow.baseline.criteria import Assessment, RuleSettings, history_assessment
from ranoflow.baseline.expert_rule import ASSESSED, ExpertSettings, PatientCourses, assess
from ranoflow.baseline.study_measures import MEASURE_COLUMNS, LesionPoints
from ranoflow.evaluate.experiment_metrics import summarise_predictions
from ranoflow.tables import read_tsv
from ranoflow.vocabulary import CLASSES

log = logging.getLogger(__name__)

EXPERIMENT = "rano_rules"
# row name -> the reference the rule reads
RULES: dict[str, str] = {"rano_rules": "history", "rano_rules_previous": "previous"}
# rows that fit something on each fold's training pairs
LEARNED = ("volumes_gbm", "rano_expert_images")
PAIR_COLUMNS = ["id", "patient", "current", "previous", "label"]
HISTORY_COLUMNS = ["reference", "baseline", "nadir", "less_than_3_months"]
ASSESSED_COLUMNS = [*PAIR_COLUMNS, *Assessment.__dataclass_fields__]
MISSING_COLUMNS = [*PAIR_COLUMNS, "reason"]


def read_inputs(pairs: str, studies: str, measures: str, folds: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict]:
    """pairs.tsv, studies.tsv, study_measures.tsv and folds.json, as every baseline row reads them."""
    with open(folds) as handle:
        split = json.load(handle)
    return read_tsv(pairs), read_tsv(studies), read_tsv(measures), split


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


def _missing_reason(measured: dict, patient: str, roles: dict[str, str]) -> str:
    missing = []
    for role, study in roles.items():
        if not study:
            missing.append(f"no {role} study")
        elif (patient, study) not in measured:
            missing.append(f"{role} study {study} has no segmentation")
    return "; ".join(dict.fromkeys(missing))


def measured_rows(measures: pd.DataFrame) -> dict[tuple[str, str], pd.Series]:
    """(patient, study) -> its row of study_measures.tsv, for the studies that have a segmentation."""
    numeric = measures.copy()
    for column in MEASURE_COLUMNS[3:]:
        numeric[column] = pd.to_numeric(numeric[column], errors="coerce")
    return {(row.patient, row.study): row for row in numeric.itertuples(index=False) if pd.notna(row.enhancing_mm3)}


def predict_pairs(
    pairs: pd.DataFrame,
    measures: pd.DataFrame,
    lesions: LesionPoints,
    settings: RuleSettings,
    reference: str = "history",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """RANO 2.0 answer (ranoflow.rano) for each pair whose studies all have measures, and the other pairs.

    measures/lesions: study_measures.tsv and study_lesions.npz (each study measured once); reference:
    'history' (baseline and nadir of pairs.tsv) or 'previous' (the previous scan only).
    """
    measured = measured_rows(measures)

    def size(key: tuple[str, str]) -> float:
        row = measured[key]
        return float(row.product_mm2 if settings.method == "bidimensional" else row.enhancing_mm3)

    rows, missing = [], []
    for pair in pairs.sort_values(["patient", "current"]).itertuples(index=False):
        roles = _roles(pair, reference)
        reason = _missing_reason(measured, pair.patient, roles)
        if reason:
            missing.append({**_pair_fields(pair), "reason": reason})
            continue
        new_lesions = (
            lesions.new_lesions(pair.patient, pair.previous, pair.current, settings.new_lesion_margin_mm)
            if settings.new_lesion
            else 0
        )
        assessment = history_assessment(
            {role: size((pair.patient, study)) for role, study in roles.items()},
            {role: float(measured[(pair.patient, study)].enhancing_mm3) for role, study in roles.items()},
            new_lesions,
            settings,
            less_than_3_months=str(getattr(pair, "less_than_3_months", "0")) == "1",
        )
        rows.append({**_pair_fields(pair), **assessment.as_dict()})
    log.info("rule-based RANO (%s): %d pairs assessed, %d without segmentation", reference, len(rows), len(missing))
    return pd.DataFrame(rows, columns=ASSESSED_COLUMNS), pd.DataFrame(missing, columns=MISSING_COLUMNS)


def predict_expert(
    pairs: pd.DataFrame,
    studies: pd.DataFrame,
    measures: pd.DataFrame,
    lesions: LesionPoints,
    settings: ExpertSettings,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """rano_expert's answer (ranoflow.baseline.expert_rule) for each pair with measures, and the other pairs."""
    courses = PatientCourses(studies, measures, lesions, settings)
    rows, missing = [], []
    for pair in pairs.sort_values(["patient", "current"]).itertuples(index=False):
        reason = courses.missing_reason(pair)
        if reason:
            missing.append({**_pair_fields(pair), "reason": reason})
            continue
        rows.append({**_pair_fields(pair), **assess(courses.course(pair), settings)})
    log.info("rano_expert: %d pairs assessed, %d without segmentation", len(rows), len(missing))
    return pd.DataFrame(rows, columns=[*PAIR_COLUMNS, *ASSESSED]), pd.DataFrame(missing, columns=MISSING_COLUMNS)


def row_description(source: str, experiment: str) -> dict:
    """What a baseline row reads, whether it learns and whether it is an oracle (summary.tsv columns)."""
    reads = {"synthetic": "oracle segmentation (the demo generator's labels)",
             "deepbratumia": "DeepBraTumIA segmentation", "hdglio": "HD-GLIO segmentation",
             "image": "image-derived segmentation"}[source]
    oracle = ""
    if source == "synthetic":
        oracle = "same rule that made the labels" if experiment == EXPERIMENT else "reads the generator's segmentations"
    return {"reads": reads, "learns": experiment in LEARNED, "oracle": oracle}


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
    settings: RuleSettings | ExpertSettings,
    missing_prediction: str,
    bootstrap: int = 1000,
    experiment: str = EXPERIMENT,
    source: str | None = None,
    architecture: str | None = None,
) -> dict:
    """results/metrics/<row>.json: the experiments' metrics schema (ranoflow.evaluate.experiment_metrics) on
    the same test folds, with what the row reads, whether it learns and whether it is an oracle."""
    source = source or settings.source
    if architecture is None:
        architecture = (f"rule-based RANO 2.0 ({settings.method}, reference: "
                        f"{'baseline and nadir' if RULES.get(experiment) == 'history' else 'previous scan'})")
    scored = predictions.dropna(subset=["predicted"])
    frames = {int(entry["fold"]): scored[scored["id"].isin(entry["test"])] for entry in folds["folds"]}
    info = {
        "ablation": "baseline",
        "protocol": folds.get("protocol"),
        "leaky": False,  # rules fit nothing; volumes_gbm fits on training pairs only
        "architecture": architecture,
        "modalities": "",
        "input": f"{source} segmentation",
        **row_description(source, experiment),
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
