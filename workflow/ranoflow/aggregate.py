"""Per-experiment metrics over folds, the majority-class baseline and the summary table."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from . import metrics as met

CLASSES = met.CLASSES
PROB_COLUMNS = [f"prob_{c}" for c in CLASSES]


def read_predictions(path: str | Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype={"id": str, "patient": str, "label": str, "predicted": str})


def summarise_predictions(
    name: str,
    fold_predictions: Mapping[int, pd.DataFrame],
    info: dict | None = None,
    bootstrap: int = 1000,
    seed: int = 0,
) -> dict:
    """Metrics per fold, fold statistics (median, mean, IQR) and pooled metrics with a bootstrap CI."""
    folds, pooled = [], []
    for fold, frame in sorted(fold_predictions.items()):
        y, p = _codes(frame["label"]), _codes(frame["predicted"])
        m = met.classification_metrics(y, p, frame[PROB_COLUMNS].to_numpy(float))
        folds.append({"fold": int(fold), "n": m["n"], "balanced_accuracy": m["balanced_accuracy"],
                      "macro_f1": m["macro_f1"], "accuracy": m["accuracy"]})
        pooled.append(frame)
    every = pd.concat(pooled, ignore_index=True)
    y, p = _codes(every["label"]), _codes(every["predicted"])
    overall = met.classification_metrics(y, p, every[PROB_COLUMNS].to_numpy(float))
    ci = met.bootstrap_ci(y, p, n=bootstrap, seed=seed)
    overall["balanced_accuracy_ci95"] = list(ci) if ci else None
    return {
        "experiment": name,
        **(info or {}),
        "median_balanced_accuracy": float(np.median([f["balanced_accuracy"] for f in folds])),
        "n_folds": len(folds),
        "folds": folds,
        "balanced_accuracy": met.fold_statistics([f["balanced_accuracy"] for f in folds]),
        "macro_f1": met.fold_statistics([f["macro_f1"] for f in folds]),
        "pooled": overall,
    }


def _codes(labels: pd.Series) -> np.ndarray:
    unknown = sorted(set(labels) - set(CLASSES))
    if unknown:
        raise ValueError(f"unknown labels {unknown}")
    return labels.map(CLASSES.index).to_numpy(int)


def experiment_info(experiment: dict, protocol: str | None, leaky: bool) -> dict:
    """The columns that describe an experiment in the summary."""
    pretraining = experiment["pretraining"]
    return {
        "ablation": experiment.get("ablation", ""),
        "protocol": protocol,
        "leaky": leaky,
        "architecture": experiment["architecture"],
        "modalities": ",".join(experiment["modalities"]),
        "input": experiment["input"],
        "pretraining": pretraining.get("task") or pretraining.get("path") or "none",
        "clinical": ",".join(experiment["clinical"]) or "none",
    }


def aggregate_experiment(experiment: dict, fold_dirs: list[str | Path], bootstrap: int = 1000, seed: int = 0) -> dict:
    """results/metrics/{experiment}.json from the fold directories of the train jobs."""
    frames, fold_metrics = {}, []
    for directory in fold_dirs:
        fold_doc = json.loads((Path(directory) / "metrics.json").read_text())
        frames[int(fold_doc["fold"])] = read_predictions(Path(directory) / "predictions.tsv")
        fold_metrics.append(fold_doc)
    protocol = fold_metrics[0].get("protocol") if fold_metrics else None
    leaky = any(f.get("leaky") for f in fold_metrics)
    doc = summarise_predictions(
        experiment["name"], frames, experiment_info(experiment, protocol, leaky), bootstrap, seed
    )
    by_fold = {f["fold"]: f for f in fold_metrics}
    for entry in doc["folds"]:
        source = by_fold[entry["fold"]]
        entry.update({k: source[k] for k in ("best_epoch", "epochs_run", "stopped_early", "n_train") if k in source})
        entry["n_left_out"] = len(source.get("left_out", []))
    return doc


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


SUMMARY_COLUMNS = [
    "experiment", "ablation", "protocol", "median_balanced_accuracy", "mean_balanced_accuracy",
    "std_balanced_accuracy", "q25_balanced_accuracy", "q75_balanced_accuracy", "iqr_balanced_accuracy",
    "pooled_balanced_accuracy", "ci95_low", "ci95_high", "median_macro_f1", "pooled_macro_f1", "roc_auc_macro",
    *[f"recall_{c}" for c in CLASSES], "n_folds", "n_pairs", "architecture", "modalities", "input",
    "pretraining", "clinical", "leaky",
]


def summary_row(doc: dict) -> dict:
    ba, pooled = doc["balanced_accuracy"], doc["pooled"]
    ci = pooled.get("balanced_accuracy_ci95") or [None, None]
    row = {
        "experiment": doc["experiment"],
        "median_balanced_accuracy": ba["median"],
        "mean_balanced_accuracy": ba["mean"],
        "std_balanced_accuracy": ba["std"],
        "q25_balanced_accuracy": ba["q25"],
        "q75_balanced_accuracy": ba["q75"],
        "iqr_balanced_accuracy": ba["iqr"],
        "pooled_balanced_accuracy": pooled["balanced_accuracy"],
        "ci95_low": ci[0],
        "ci95_high": ci[1],
        "median_macro_f1": doc["macro_f1"]["median"],
        "pooled_macro_f1": pooled["macro_f1"],
        "roc_auc_macro": (pooled.get("roc_auc") or {}).get("macro"),
        **{f"recall_{c}": pooled["per_class"][c]["recall"] for c in CLASSES},
        "n_folds": doc["n_folds"],
        "n_pairs": pooled["n"],
    }
    for key in ("ablation", "protocol", "architecture", "modalities", "input", "pretraining", "clinical", "leaky"):
        row[key] = doc.get(key, "")
    return row


def summary_table(docs: list[dict]) -> pd.DataFrame:
    """One row per experiment (and baseline), best median balanced accuracy first."""
    table = pd.DataFrame([summary_row(d) for d in docs], columns=SUMMARY_COLUMNS)
    return table.sort_values(
        ["median_balanced_accuracy", "pooled_balanced_accuracy", "experiment"],
        ascending=[False, False, True], kind="mergesort",
    ).reset_index(drop=True)
