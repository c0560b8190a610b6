"""`rano_expert_images`: the expert rule (ranoflow.baseline.expert_rule) on segmentations derived from the images.

The enhancement threshold of the image-derived segmentation (ranoflow.baseline.image_segmentation) is the one
free parameter: for each fold, the candidate whose ratings of that fold's training pairs (train and validation,
never test) reach the highest balanced accuracy against their labels (first candidate on a tie); the fold's test
pairs are then rated at that threshold. Rating one pair needs no label, so every pair is rated once per candidate
and each fold only chooses among those ratings.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd
from sklearn.metrics import balanced_accuracy_score

from ranoflow.baseline.expert_rule import ExpertSettings
from ranoflow.baseline.image_segmentation import CandidateArrays
from ranoflow.baseline.scoring import predict_expert
from ranoflow.baseline.study_measures import LesionPoints

log = logging.getLogger(__name__)

EXPERIMENT = "rano_expert_images"


def rate_candidates(pairs: pd.DataFrame, studies: pd.DataFrame, measures: pd.DataFrame, arrays,
                    thresholds: list[float], settings: ExpertSettings) -> list[tuple[pd.DataFrame, pd.DataFrame]]:
    """The expert rule's (assessed, missing) tables of every pair, once per candidate threshold."""
    rated = []
    for index, threshold in enumerate(thresholds):
        candidate = measures[np.isclose(pd.to_numeric(measures["threshold"]), threshold)]
        lesions = LesionPoints(CandidateArrays(arrays, index))
        rated.append(predict_expert(pairs, studies, candidate.drop(columns="threshold"), lesions, settings))
    return rated


def training_accuracy(assessed: pd.DataFrame, pairs: pd.DataFrame, ids: list[str], missing_prediction: str) -> float:
    """Balanced accuracy of one candidate's ratings on the given (training) pairs; unrated pairs get the
    missing_prediction class, or are left out with 'exclude'."""
    labels = pairs.set_index("id").loc[ids, "label"]
    predicted = assessed.set_index("id")["predicted"].reindex(ids)
    if missing_prediction == "exclude":
        keep = predicted.notna().to_numpy()
        labels, predicted = labels[keep], predicted[keep]
    else:
        predicted = predicted.fillna(missing_prediction)
    if not len(labels):
        return float("nan")
    with warnings.catch_warnings():  # a small training split may lack a class the rule predicts
        warnings.simplefilter("ignore", UserWarning)
        return float(balanced_accuracy_score(labels.to_numpy(), predicted.to_numpy()))


def fit_folds(rated: list[tuple[pd.DataFrame, pd.DataFrame]], pairs: pd.DataFrame, folds: dict,
              thresholds: list[float], missing_prediction: str) -> list[dict]:
    """Per fold: the chosen threshold's index and value and every candidate's training balanced accuracy."""
    fitted = []
    for entry in folds["folds"]:
        training = [pair for pair in [*entry["train"], *entry.get("val", [])] if pair not in set(entry["test"])]
        scores = [training_accuracy(assessed, pairs, training, missing_prediction) for assessed, _ in rated]
        best = int(np.nanargmax(scores)) if not np.all(np.isnan(scores)) else 0
        fitted.append({"fold": int(entry["fold"]), "index": best, "threshold": thresholds[best],
                       "training_pairs": len(training), "training_balanced_accuracy": scores})
        log.info("fold %s: threshold %s (training balanced accuracy %s)", entry["fold"], thresholds[best],
                 [round(s, 3) for s in scores])
    return fitted


def rate_test_pairs(rated: list[tuple[pd.DataFrame, pd.DataFrame]], folds: dict,
                 fitted: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each fold's test pairs rated at its fitted threshold (assessed, with a `threshold` column) and the
    test pairs the rule could not rate at it (missing)."""
    assessed, missing = [], []
    for entry, fit in zip(folds["folds"], fitted):
        rows, unrated = rated[fit["index"]]
        test = set(entry["test"])
        assessed.append(rows[rows["id"].isin(test)].assign(threshold=fit["threshold"]))
        missing.append(unrated[unrated["id"].isin(test)])
    return pd.concat(assessed, ignore_index=True), pd.concat(missing, ignore_index=True)
