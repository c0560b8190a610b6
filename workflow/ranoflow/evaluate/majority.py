"""The majority-class baseline: every test pair predicted as its fold's most frequent training class."""

from __future__ import annotations

import pandas as pd

from ranoflow.evaluate.experiment_metrics import summarise_predictions
from ranoflow.vocabulary import CLASSES


def majority_baseline(pairs: pd.DataFrame, folds: dict, bootstrap: int = 1000, seed: int = 0) -> dict:
    """Every test pair predicted as the most frequent class of its fold's training pairs."""
    labels = pairs.set_index("id")["label"]
    frames = {}
    for entry in folds["folds"]:
        counts = labels.loc[entry["train"]].value_counts()
        majority = max(CLASSES, key=lambda c: (counts.get(c, 0), -CLASSES.index(c)))
        test = labels.loc[entry["test"]]
        frame = pd.DataFrame({"id": test.index, "label": test.to_numpy(), "predicted": majority})
        for c in CLASSES:
            frame[f"prob_{c}"] = float(c == majority)
        frames[int(entry["fold"])] = frame
    info = {"ablation": "baseline", "protocol": folds.get("protocol"), "leaky": bool(folds.get("leaky", False)),
            "architecture": "majority class", "modalities": "", "input": "", "pretraining": "", "clinical": ""}
    return summarise_predictions("majority_class", frames, info, bootstrap, seed)
