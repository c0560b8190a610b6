"""Metrics of one experiment over its test folds: per fold, fold statistics, pooled with a bootstrap CI.

The same document (results/metrics/<name>.json) describes learned models and baselines alike."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from ranoflow.evaluate import metrics as met
from ranoflow.vocabulary import CLASSES

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
    """Metrics per fold (with the fold's chance level and absent classes), fold statistics (median, mean,
    IQR) and pooled metrics with a bootstrap CI that resamples patients (pairs where no `patient` column)."""
    folds, pooled = [], []
    for fold, frame in sorted(fold_predictions.items()):
        y, p = _codes(frame["label"]), _codes(frame["predicted"])
        m = met.classification_metrics(y, p, frame[PROB_COLUMNS].to_numpy(float))
        folds.append({"fold": int(fold), "n": m["n"], "balanced_accuracy": m["balanced_accuracy"],
                      "macro_f1": m["macro_f1"], "accuracy": m["accuracy"],
                      "chance_balanced_accuracy": m["chance_balanced_accuracy"],
                      "classes_absent": m["classes_absent"]})
        pooled.append(frame)
    every = pd.concat(pooled, ignore_index=True)
    y, p = _codes(every["label"]), _codes(every["predicted"])
    overall = met.classification_metrics(y, p, every[PROB_COLUMNS].to_numpy(float))
    patients = every["patient"].to_numpy(str) if "patient" in every else None
    ci = met.bootstrap_ci(y, p, n=bootstrap, seed=seed, groups=patients)
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
        "references": ",".join(experiment.get("references", ["previous"])),
        "pretraining": pretraining.get("task") or pretraining.get("path") or "none",
        "clinical": ",".join(experiment["clinical"]) or "none",
    }


def fold_predictions(fold_dirs: list[str | Path]) -> pd.DataFrame:
    """Every fold's predictions.tsv stacked, with a `fold` column (the summary scores them on common pairs)."""
    frames = []
    for directory in fold_dirs:
        fold = int(json.loads((Path(directory) / "metrics.json").read_text())["fold"])
        frames.append(read_predictions(Path(directory) / "predictions.tsv").assign(fold=fold))
    return pd.concat(frames, ignore_index=True)


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
