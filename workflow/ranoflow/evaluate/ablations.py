"""Ablations as paired differences: each row of summary.tsv against its reference experiment on the same test
pairs, with a 95 % CI from a bootstrap that resamples patients (both rows keep the same resampled pairs), and
a verdict: better or worse when the CI of the balanced-accuracy difference excludes 0, else indistinguishable.
A row trained with several seeds (`training.seeds`) enters with every seed's predictions: each side is averaged
over its seeds inside every resample; each seed's own difference and verdict give the spread over seeds.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ranoflow.evaluate import metrics as met
from ranoflow.evaluate.experiment_metrics import seed_groups
from ranoflow.vocabulary import CLASSES

DIFFERENCE_COLUMNS = [
    "reference_experiment", "delta_balanced_accuracy", "delta_balanced_accuracy_ci95_low",
    "delta_balanced_accuracy_ci95_high", "delta_macro_f1", "delta_macro_f1_ci95_low", "delta_macro_f1_ci95_high",
    "verdict", "delta_balanced_accuracy_seed_min", "delta_balanced_accuracy_seed_max", "verdict_per_seed",
]
# The rule baseline given only the studies an experiment reads: the most its references allow.
CEILINGS = {("previous",): "rano_rules_previous", ("baseline", "nadir"): "rano_rules"}


def seed_runs(frame: pd.DataFrame, ids: list[str]) -> dict:
    """Training seed -> a row's predicted class codes on `ids` (one entry, under None, for rows without a
    `seed` column, such as baselines)."""
    return {
        value: run.set_index("id").loc[ids, "predicted"].map(CLASSES.index).to_numpy(int)
        for value, run in seed_groups(frame)
    }


def _seed_mean_scores(y: np.ndarray, runs: list[np.ndarray], weights: np.ndarray) -> np.ndarray:
    """(resamples, 2): balanced accuracy and macro-F1 of each weighting, averaged over the seed runs."""
    scores = [np.stack(met.confusion_scores(met.weighted_confusion(y, run, weights)), axis=-1) for run in runs]
    return np.mean(scores, axis=0)


def _difference(y: np.ndarray, row: list[np.ndarray], reference: list[np.ndarray], weights: np.ndarray,
                level: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Point difference (balanced accuracy, macro-F1) of the seed-averaged scores and its percentile CI."""
    ones = np.ones((1, len(y)))
    point = _seed_mean_scores(y, row, ones)[0] - _seed_mean_scores(y, reference, ones)[0]
    deltas = _seed_mean_scores(y, row, weights) - _seed_mean_scores(y, reference, weights)
    tail = (1 - level) / 2 * 100
    low, high = np.nanpercentile(deltas, [tail, 100 - tail], axis=0)
    return point, low, high


def paired_difference(
    row: pd.DataFrame, reference: pd.DataFrame, n: int = 2000, seed: int = 0, level: float = 0.95
) -> dict:
    """Difference (row - reference) of pooled balanced accuracy and macro-F1 over the pairs both scored, each
    side averaged over its training seeds, with percentile CIs from `n` bootstrap resamples of patients (the
    same resamples for both sides and for every seed), and per seed both rows ran (a row without seeds is
    compared with each seed of the other) that seed's difference and verdict.

    Both frames hold id, patient, label and predicted columns, and `seed` where a row ran several seeds."""
    shared = set(row["id"]) & set(reference["id"])
    if not shared:
        raise ValueError("no test pair is scored by both the row and its reference experiment")
    pairs = row.drop_duplicates("id").set_index("id").loc[sorted(shared)]
    ids = list(pairs.index)
    y = pairs["label"].map(CLASSES.index).to_numpy(int)
    row_runs, ref_runs = seed_runs(row, ids), seed_runs(reference, ids)
    weights = met.patient_resamples(pairs["patient"].to_numpy(str), n, seed)
    point, low, high = _difference(y, list(row_runs.values()), list(ref_runs.values()), weights, level)
    per_seed = {}
    for value in _shared_seeds(row_runs, ref_runs):
        one = [runs[value] if value in runs else runs[None] for runs in (row_runs, ref_runs)]
        seed_point, seed_low, seed_high = _difference(y, one[:1], one[1:], weights, level)
        per_seed[value] = (float(seed_point[0]), verdict(float(seed_low[0]), float(seed_high[0])))
    deltas = [delta for delta, _ in per_seed.values()] or [float(point[0])]
    return {
        "delta_balanced_accuracy": float(point[0]),
        "delta_balanced_accuracy_ci95_low": float(low[0]),
        "delta_balanced_accuracy_ci95_high": float(high[0]),
        "delta_macro_f1": float(point[1]),
        "delta_macro_f1_ci95_low": float(low[1]),
        "delta_macro_f1_ci95_high": float(high[1]),
        "verdict": verdict(float(low[0]), float(high[0])),
        "delta_balanced_accuracy_seed_min": min(deltas),
        "delta_balanced_accuracy_seed_max": max(deltas),
        "verdict_per_seed": "; ".join(f"seed {value}: {word}" for value, (_, word) in per_seed.items()),
        "n_pairs_compared": len(ids),
        "n_patients_compared": int(pairs["patient"].nunique()),
    }


def _shared_seeds(row_runs: dict, ref_runs: dict) -> list[int]:
    """The seeds both rows ran; a row without seeds (key None) shares every seed of the other."""
    row_seeds, ref_seeds = ({k for k in runs if k is not None} for runs in (row_runs, ref_runs))
    return sorted((row_seeds or ref_seeds) & (ref_seeds or row_seeds))


def verdict(low: float, high: float) -> str:
    """better / worse when the CI of the difference excludes 0, else indistinguishable."""
    if low > 0:
        return "better"
    if high < 0:
        return "worse"
    return "indistinguishable"


def reference_problem(default: str | None, experiments: Mapping[str, dict]) -> str:
    """'' when `evaluate.reference_experiment` and every experiment's `reference` name an experiment, else
    one line naming the key (checked at parse time, before any job)."""
    named = {"evaluate.reference_experiment": default}
    named |= {f"experiments.{name}.reference": e.get("reference") for name, e in experiments.items()}
    for key, value in named.items():
        if value and value not in experiments:
            return f"{key} is {value!r}, not an experiment of this config; choose from {sorted(experiments)}"
    return ""


def reference_of(name: str, experiments: Mapping[str, dict], default: str | None) -> str | None:
    """The experiment a row is compared with: its own `reference` key, else `evaluate.reference_experiment`."""
    own = (experiments.get(name) or {}).get("reference")
    return own or default


def ablation_differences(
    common: Mapping[str, pd.DataFrame],
    experiments: Mapping[str, dict],
    default_reference: str | None,
    n: int = 2000,
    seed: int = 0,
) -> dict[str, dict]:
    """Row name -> its DIFFERENCE_COLUMNS (empty for the reference itself or when no reference is set).

    common: row name -> its predictions on the common test pairs (ranoflow.evaluate.common_pairs)."""
    unknown = sorted(
        {ref for name in common if (ref := reference_of(name, experiments, default_reference))} - set(common)
    )
    if unknown:
        raise ValueError(f"reference experiment(s) {unknown} are not rows of the summary ({sorted(common)})")
    out = {}
    for name, frame in common.items():
        reference = reference_of(name, experiments, default_reference)
        if reference is None:
            out[name] = {}
        elif reference == name:
            out[name] = {"reference_experiment": name, "verdict": "reference"}
        else:
            out[name] = {"reference_experiment": reference, **paired_difference(frame, common[reference], n, seed)}
    return out


def information_ceiling(references: list[str], rows: set[str]) -> str:
    """The rule-baseline row that reads only what `references` give (blank when the summary has none)."""
    given = set(references)
    for needed, row in sorted(CEILINGS.items(), key=lambda item: -len(item[0])):
        if set(needed) <= given and (row != "rano_rules_previous" or given == {"previous"}) and row in rows:
            return row
    return ""


COMPARED_VERDICTS = ("reference", "better", "indistinguishable", "worse")


def grouped_differences(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of summary.tsv that carry a verdict, grouped by ablation in the table's order with the
    baselines last, the reference first and then the largest difference first within a group."""
    compared = table[table["verdict"].isin(COMPARED_VERDICTS)].copy()
    ablation = compared["ablation"].fillna("").astype(str)
    groups = [g for g in dict.fromkeys(ablation) if g != "baseline"] + ["baseline"]
    delta = pd.to_numeric(compared["delta_balanced_accuracy"], errors="coerce").fillna(np.inf)
    compared["_group"] = ablation.map({g: i for i, g in enumerate(groups)})
    compared["_delta"] = delta.where(compared["verdict"] != "reference", np.inf)
    ordered = compared.sort_values(["_group", "_delta", "experiment"], ascending=[True, False, True], kind="mergesort")
    return ordered.drop(columns=["_group", "_delta"]).reset_index(drop=True)
