"""Apply the rule-based RANO response to every scorable pair and score it on the experiments' folds."""

from __future__ import annotations

import functools
import logging
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from ranoflow import lumiere
from ranoflow.baseline.criteria import Assessment, RuleSettings, assess_pair
from ranoflow.baseline.measurements import load_segmentation, measured_enhancing_volume
from ranoflow.evaluate.experiment_metrics import summarise_predictions
from ranoflow.vocabulary import CLASSES

log = logging.getLogger(__name__)

# studies.tsv column holding each source's segmentation (the demo generator writes DeepBraTumIA-like files).
SEGMENTATION_COLUMN: dict[str, str] = {
    "deepbratumia": "seg_deepbratumia",
    "hdglio": "seg_hdglio",
    "synthetic": "seg_deepbratumia",
}
EXPERIMENT = "rano_rules"
PAIR_COLUMNS = ["id", "patient", "current", "previous", "label"]
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


def _missing_reason(paths: dict[tuple[str, str], str], patient: str, current: str, previous: str) -> str:
    missing = [
        f"{role} study {study} has no segmentation"
        for role, study in (("previous", previous), ("current", current))
        if not paths.get((patient, study))
    ]
    return "; ".join(missing)


def predict_pairs(
    pairs: pd.DataFrame,
    studies: pd.DataFrame,
    settings: RuleSettings,
    volumes: str = "mask",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rule-based answer for each pair with both segmentations, and the pairs without them.

    volumes: 'mask' counts enhancing voxels; 'measured' reads DeepBraTumIA's
    measured_volumes_in_mm3.json beside the segmentation.
    """
    if volumes == "measured" and settings.source == "hdglio":
        raise ValueError("volumes: measured reads DeepBraTumIA's measured_volumes_in_mm3.json; HD-GLIO-AUTO has none")
    paths = segmentation_paths(studies, settings.source)

    @functools.lru_cache(maxsize=16)
    def load(path: str):
        return load_segmentation(path, settings.source)

    def volume(path: str) -> float | None:
        if volumes != "measured":
            return None
        return measured_enhancing_volume(Path(path).parent / Path(lumiere.DBT_VOLUMES).name)

    rows, missing = [], []
    for pair in pairs.sort_values(["patient", "current"]).itertuples(index=False):
        reason = _missing_reason(paths, pair.patient, pair.current, pair.previous)
        if reason:
            missing.append({**_pair_fields(pair), "reason": reason})
            continue
        previous_path, current_path = paths[(pair.patient, pair.previous)], paths[(pair.patient, pair.current)]
        assessment = assess_pair(
            load(previous_path), load(current_path), settings, volume(previous_path), volume(current_path)
        )
        rows.append({**_pair_fields(pair), **assessment.as_dict()})
    log.info("rule-based RANO: %d pairs assessed, %d without segmentation", len(rows), len(missing))
    return pd.DataFrame(rows, columns=ASSESSED_COLUMNS), pd.DataFrame(missing, columns=MISSING_COLUMNS)


def scored_predictions(
    pairs: pd.DataFrame, assessed: pd.DataFrame, folds: dict, missing_prediction: str
) -> pd.DataFrame:
    """One row per pair, with its test fold, the rule's answer (or the fallback) and one-hot probabilities.

    missing_prediction: class given to pairs without segmentation, or 'exclude' to leave them unscored.
    """
    merged = pairs[PAIR_COLUMNS].merge(assessed.drop(columns=PAIR_COLUMNS[1:]), on="id", how="left")
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
    predictions: pd.DataFrame, folds: dict, settings: RuleSettings, missing_prediction: str, bootstrap: int = 1000
) -> dict:
    """results/metrics/rano_rules.json: the experiments' metrics schema (ranoflow.evaluate.experiment_metrics) on the same test folds."""
    scored = predictions.dropna(subset=["predicted"])
    frames = {int(entry["fold"]): scored[scored["id"].isin(entry["test"])] for entry in folds["folds"]}
    info = {
        "ablation": "baseline",
        "protocol": folds.get("protocol"),
        "leaky": False,  # nothing is fitted, so no test pair can leak into it
        "architecture": f"rule-based RANO 2.0 ({settings.method})",
        "modalities": "",
        "input": f"{settings.source} segmentation",
        "pretraining": "",
        "clinical": "",
        "settings": {**asdict(settings), "missing_prediction": missing_prediction},
        "n_missing_segmentation": int((predictions["segmentation"] == "missing").sum()),
    }
    doc = summarise_predictions(EXPERIMENT, {k: v for k, v in frames.items() if len(v)}, info, bootstrap)
    missing = predictions.loc[predictions["segmentation"] == "missing", "id"]
    test = {int(entry["fold"]): entry["test"] for entry in folds["folds"]}
    for entry in doc["folds"]:
        entry["n_missing_segmentation"] = int(missing.isin(test[entry["fold"]]).sum())
    doc["median_balanced_accuracy"] = doc["balanced_accuracy"]["median"]
    return doc
