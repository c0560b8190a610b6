"""One test set for every row of summary.tsv: per fold, the test pairs that every compared row scored.

Experiments leave out pairs that lack their modalities or reference studies, baselines pairs without a
segmentation; ranking rows on different subsets would compare different tasks. Each row's predictions
(id, label, predicted, optional patient and prob_* columns) are restricted to the common pairs and scored
there; the rows' own full-coverage figures stay in their metrics JSON.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ranoflow.evaluate.experiment_metrics import pairs_scored, summarise_predictions
from ranoflow.vocabulary import CLASSES

PROB_COLUMNS = [f"prob_{c}" for c in CLASSES]
FOLD_COLUMNS = ["fold", "n_pairs", "n_patients", "classes_absent", "chance_balanced_accuracy", "not_scored_by"]


def test_fold_of(folds: dict) -> dict[str, int]:
    """Pair id -> the fold whose test set holds it."""
    return {pair: int(entry["fold"]) for entry in folds["folds"] for pair in entry["test"]}


def scored_rows(predictions: pd.DataFrame, folds: dict) -> pd.DataFrame:
    """The test pairs a row answered, each with its test fold (from folds.json) and probabilities.

    Rows without a class in `predicted` (e.g. a baseline's unscored pairs) or outside every test fold are
    dropped; missing prob_* columns are filled one-hot from `predicted`.
    """
    frame = predictions[predictions["predicted"].isin(CLASSES)].copy()
    frame["fold"] = frame["id"].map(test_fold_of(folds))
    frame = frame.dropna(subset=["fold"]).astype({"fold": int})
    for name in CLASSES:
        column = f"prob_{name}"
        if column not in frame or frame[column].isna().any() or (frame[column] == "").any():
            frame[column] = (frame["predicted"] == name).astype(float)
    return frame.astype({column: float for column in PROB_COLUMNS})


def common_test_pairs(rows: Mapping[str, pd.DataFrame], folds: dict) -> dict[int, list[str]]:
    """Per fold, the test pair ids (folds.json order) that every row scored (rows as from scored_rows)."""
    common = {}
    for entry in folds["folds"]:
        fold = int(entry["fold"])
        ids = set(entry["test"])
        for frame in rows.values():
            ids &= set(frame.loc[frame["fold"] == fold, "id"])
        common[fold] = [pair for pair in entry["test"] if pair in ids]
    return common


def fold_table(rows: Mapping[str, pd.DataFrame], common: Mapping[int, list[str]], pairs: pd.DataFrame) -> pd.DataFrame:
    """Per fold: common pairs and patients, the classes absent from them, the chance balanced accuracy
    (1 / classes present) and how many of the fold's common candidates each row did not score."""
    by_id = pairs.set_index("id")
    table = []
    for fold, ids in common.items():
        present = set(by_id.loc[ids, "label"]) if ids else set()
        scored = {name: set(frame.loc[frame["fold"] == fold, "id"]) for name, frame in rows.items()}
        union = set().union(*scored.values()) if scored else set()
        missing = {name: len(union - ids_) for name, ids_ in scored.items() if union - ids_}
        table.append(
            {
                "fold": fold,
                "n_pairs": len(ids),
                "n_patients": by_id.loc[ids, "patient"].nunique() if ids else 0,
                "classes_absent": ",".join(c for c in CLASSES if c not in present),
                "chance_balanced_accuracy": 1 / len(present) if present else np.nan,
                "not_scored_by": "; ".join(f"{name}: {n}" for name, n in missing.items()),
            }
        )
    return pd.DataFrame(table, columns=FOLD_COLUMNS)


def common_frames(rows: pd.DataFrame, common: Mapping[int, list[str]], pairs: pd.DataFrame) -> dict[int, pd.DataFrame]:
    """A row's predictions (as from scored_rows) on each fold's common pairs, with each pair's patient."""
    patients = pairs.set_index("id")["patient"]
    frames = {}
    for fold, ids in common.items():
        if not ids:
            continue
        # every seed run of a row answers each id once, so .loc keeps each id's runs in folds.json order
        frame = rows[rows["fold"] == fold].set_index("id").loc[ids].reset_index()
        frames[fold] = frame.assign(patient=frame["id"].map(patients).to_numpy())
    return frames


def score_on_common_pairs(
    doc: dict,
    rows: pd.DataFrame,
    common: Mapping[int, list[str]],
    pairs: pd.DataFrame,
    bootstrap: int = 1000,
    seed: int = 0,
) -> dict:
    """A row's metrics document recomputed on the common pairs; its own figures kept under `own`."""
    frames = common_frames(rows, common, pairs)
    if not frames:
        raise ValueError(f"{doc['experiment']}: no test pair is scored by every row of the summary")
    info = {k: v for k, v in doc.items() if k not in ("folds", "balanced_accuracy", "macro_f1", "pooled")}
    common_doc = summarise_predictions(doc["experiment"], frames, info, bootstrap, seed)
    common_doc["own"] = {
        "median_balanced_accuracy": doc["balanced_accuracy"]["median"],
        "n_pairs": pairs_scored(doc),
    }
    return common_doc


def compare_rows(
    own: Mapping[str, dict],
    predictions: Mapping[str, pd.DataFrame],
    folds: dict,
    pairs: pd.DataFrame,
    bootstrap: int = 1000,
    seed: int = 0,
) -> tuple[list[dict], pd.DataFrame]:
    """Every row's metrics on the common test pairs, the per-fold table of those pairs, and every row's
    predictions on them (name -> frame of all folds, for the paired differences of ranoflow.evaluate.ablations).

    own: row name -> its metrics document; predictions: row name -> its predictions (any test pairs).
    """
    rows = {name: scored_rows(frame, folds) for name, frame in predictions.items()}
    common = common_test_pairs(rows, folds)
    docs = [score_on_common_pairs(own[name], rows[name], common, pairs, bootstrap, seed) for name in own]
    on_common = {
        name: pd.concat(common_frames(rows[name], common, pairs).values(), ignore_index=True) for name in own
    }
    return docs, fold_table(rows, common, pairs), on_common
