"""The majority-class baseline: every test pair predicted as its fold's most frequent training class."""

from __future__ import annotations

import pandas as pd

from ranoflow.evaluate.experiment_metrics import summarise_predictions
from ranoflow.vocabulary import CLASSES


def majority_predictions(pairs: pd.DataFrame, folds: dict) -> dict[int, pd.DataFrame]:
    """Per fold: every test pair predicted as the most frequent class of the fold's training pairs."""
    labels = pairs.set_index("id")["label"]
    patients = pairs.set_index("id")["patient"] if "patient" in pairs else None
    frames = {}
    for entry in folds["folds"]:
        counts = labels.loc[entry["train"]].value_counts()
        majority = max(CLASSES, key=lambda c: (counts.get(c, 0), -CLASSES.index(c)))
        test = labels.loc[entry["test"]]
        frame = pd.DataFrame({"id": test.index, "label": test.to_numpy(), "predicted": majority})
        if patients is not None:
            frame.insert(1, "patient", patients.loc[entry["test"]].to_numpy())
        for c in CLASSES:
            frame[f"prob_{c}"] = float(c == majority)
        frames[int(entry["fold"])] = frame.assign(fold=int(entry["fold"]))
    return frames


def majority_baseline(pairs: pd.DataFrame, folds: dict, bootstrap: int = 1000, seed: int = 0) -> dict:
    """Metrics of the majority-class baseline (majority_predictions) on every test pair."""
    frames = majority_predictions(pairs, folds)
    info = {"ablation": "baseline", "protocol": folds.get("protocol"), "leaky": bool(folds.get("leaky", False)),
            "architecture": "majority class", "modalities": "", "input": "", "references": "", "pretraining": "",
            "clinical": ""}
    return summarise_predictions("majority_class", frames, info, bootstrap, seed)
