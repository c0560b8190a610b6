"""Metrics of one experiment over its test folds: per fold, fold statistics, pooled with a bootstrap CI.

The same document (results/metrics/<name>.json) describes learned models and baselines alike."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
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
    """Metrics per run (a fold, or a fold x training seed where the frames hold a `seed` column; with the
    fold's chance level and absent classes), run statistics (median, mean, IQR), the spread over seeds, and
    metrics pooled over every run with a bootstrap CI that resamples patients (pairs where no `patient`)."""
    runs, pooled = [], []
    for fold, frame in sorted(fold_predictions.items()):
        for run_seed, run in seed_groups(frame):
            y, p = _codes(run["label"]), _codes(run["predicted"])
            m = met.classification_metrics(y, p, run[PROB_COLUMNS].to_numpy(float))
            entry = {"fold": int(fold), "n": m["n"], "balanced_accuracy": m["balanced_accuracy"],
                     "macro_f1": m["macro_f1"], "accuracy": m["accuracy"],
                     "chance_balanced_accuracy": m["chance_balanced_accuracy"],
                     "classes_absent": m["classes_absent"]}
            runs.append(entry if run_seed is None else {**entry, "seed": run_seed})
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
        "median_balanced_accuracy": float(np.median([r["balanced_accuracy"] for r in runs])),
        "n_folds": len({r["fold"] for r in runs}),
        "folds": runs,
        "balanced_accuracy": met.fold_statistics([r["balanced_accuracy"] for r in runs]),
        "macro_f1": met.fold_statistics([r["macro_f1"] for r in runs]),
        "seeds": seed_spread(runs),
        "pooled": overall,
    }


def seed_groups(frame: pd.DataFrame) -> Iterator[tuple[int | None, pd.DataFrame]]:
    """A row's predictions per training seed, in seed order; one group under None for rows without a
    `seed` column (baselines) or without a seed value."""
    if "seed" not in frame:
        yield None, frame
        return
    for value, run in frame.groupby("seed", sort=True, dropna=False):
        yield (None if pd.isna(value) else int(value)), run


def fold_runs(doc: dict) -> list[dict]:
    """Each fold of a metrics document once (its first run), in order."""
    first: dict[int, dict] = {}
    for run in doc["folds"]:
        first.setdefault(run["fold"], run)
    return list(first.values())


def pairs_scored(doc: dict) -> int:
    """Test pairs a metrics document scored, each once however many seeds ran it."""
    return int(sum(run["n"] for run in fold_runs(doc)))


def seed_spread(runs: list[dict]) -> dict:
    """Each training seed's median balanced accuracy over its folds and their standard deviation (0 with one
    seed; rows without seeds count as one)."""
    by_seed: dict = {}
    for run in runs:
        by_seed.setdefault(run.get("seed"), []).append(run["balanced_accuracy"])
    medians = {str(k): float(np.median(v)) for k, v in sorted(by_seed.items(), key=lambda kv: str(kv[0]))}
    values = list(medians.values())
    return {
        "n": len(values),
        "median_balanced_accuracy": medians,
        "std_balanced_accuracy": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
    }


def _codes(labels: pd.Series) -> np.ndarray:
    unknown = sorted(set(labels) - set(CLASSES))
    if unknown:
        raise ValueError(f"unknown labels {unknown}")
    return labels.map(CLASSES.index).to_numpy(int)


def experiment_info(experiment: dict, protocol: str | None, leaky: bool) -> dict:
    """The columns that describe an experiment in the summary."""
    pretraining = experiment["pretraining"]
    training = experiment.get("training", {})
    info = {} if not training.get("volume_loss") else {
        # the volumes are of the segmentations baseline.source names: the generator's own in the demo
        "reads": "preprocessed images; training also fits each study's enhancing volume (study_volumes.tsv)"
    }
    return {
        **info,
        "ablation": experiment.get("ablation", ""),
        "protocol": protocol,
        "leaky": leaky,
        "architecture": experiment["architecture"] + (" (shared encoder)" if training.get("encoder") == "shared" else ""),
        "modalities": ",".join(experiment["modalities"]),
        "input": experiment["input"],
        "references": ",".join(experiment.get("references", ["previous"])),
        "pretraining": pretraining.get("task") or pretraining.get("path") or "none",
        "clinical": ",".join(experiment["clinical"]) or "none",
    }


def run_seed(directory: str | Path) -> int | None:
    """The training seed of a train job's folder (metrics.json, else metadata.json of older runs)."""
    for name in ("metrics.json", "metadata.json"):
        path = Path(directory) / name
        if path.exists() and (value := json.loads(path.read_text()).get("seed")) is not None:
            return int(value)
    return None


def fold_predictions(fold_dirs: list[str | Path]) -> pd.DataFrame:
    """Every run's predictions.tsv stacked, with `fold` and `seed` columns (the summary scores them on
    common pairs)."""
    frames = []
    for directory in fold_dirs:
        fold = int(json.loads((Path(directory) / "metrics.json").read_text())["fold"])
        frames.append(read_predictions(Path(directory) / "predictions.tsv").assign(fold=fold, seed=run_seed(directory)))
    return pd.concat(frames, ignore_index=True)


def aggregate_experiment(experiment: dict, fold_dirs: list[str | Path], bootstrap: int = 1000, seed: int = 0) -> dict:
    """results/metrics/{experiment}.json from the folders of the train jobs (every fold x seed)."""
    predictions = fold_predictions(fold_dirs)
    by_run = {}
    for directory in fold_dirs:
        fold_doc = json.loads((Path(directory) / "metrics.json").read_text())
        by_run[(int(fold_doc["fold"]), run_seed(directory))] = fold_doc
    protocol = next(iter(by_run.values())).get("protocol") if by_run else None
    leaky = any(f.get("leaky") for f in by_run.values())
    doc = summarise_predictions(
        experiment["name"],
        {int(fold): frame.drop(columns="fold") for fold, frame in predictions.groupby("fold", sort=True)},
        experiment_info(experiment, protocol, leaky),
        bootstrap,
        seed,
    )
    for entry in doc["folds"]:
        source = by_run[(entry["fold"], entry.get("seed"))]
        entry.update({k: source[k] for k in ("best_epoch", "epochs_run", "stopped_early", "n_train") if k in source})
        entry["n_left_out"] = len(source.get("left_out", []))
    return doc
