"""Ablations as paired differences: each row of summary.tsv against its reference experiment on the same test
pairs, with a 95 % CI from a bootstrap that resamples patients (both rows keep the same resampled pairs), and
a verdict: better or worse when the CI of the balanced-accuracy difference excludes 0, else indistinguishable.
A row trained with several seeds (`training.seeds`) enters with every seed's predictions: each side is averaged
over its seeds inside every resample, and the per-seed differences give the spread over seeds.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ranoflow.evaluate import metrics as met
from ranoflow.vocabulary import CLASSES

DIFFERENCE_COLUMNS = [
    "reference_experiment", "delta_balanced_accuracy", "delta_balanced_accuracy_ci95_low",
    "delta_balanced_accuracy_ci95_high", "delta_macro_f1", "delta_macro_f1_ci95_low", "delta_macro_f1_ci95_high",
    "verdict", "delta_balanced_accuracy_seed_min", "delta_balanced_accuracy_seed_max",
]
# The rule baseline given only the studies an experiment reads: the most its references allow.
CEILINGS = {("previous",): "rano_rules_previous", ("baseline", "nadir"): "rano_rules"}


def seed_predictions(frame: pd.DataFrame, ids: list[str]) -> np.ndarray:
    """(seeds, pairs): a row's predicted class codes on `ids`, one line per training seed (one line for rows
    without a `seed` column, such as baselines)."""
    runs = frame.groupby("seed", sort=True, dropna=False) if "seed" in frame else [(None, frame)]
    return np.stack([run.set_index("id").loc[ids, "predicted"].map(CLASSES.index).to_numpy(int) for _, run in runs])


def _seed_mean_scores(y: np.ndarray, runs: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(resamples, 2): balanced accuracy and macro-F1 of each weighting, averaged over the seed runs."""
    scores = [np.stack(met.confusion_scores(met.weighted_confusion(y, run, weights)), axis=-1) for run in runs]
    return np.mean(scores, axis=0)


def paired_difference(
    row: pd.DataFrame, reference: pd.DataFrame, n: int = 2000, seed: int = 0, level: float = 0.95
) -> dict:
    """Difference (row - reference) of pooled balanced accuracy and macro-F1 over the pairs both scored, each
    side averaged over its training seeds, with percentile CIs from `n` bootstrap resamples of patients (the
    same resamples for both sides), and the range of the per-seed differences where both share seeds.

    Both frames hold id, patient, label and predicted columns, and `seed` where a row ran several seeds."""
    shared = set(row["id"]) & set(reference["id"])
    if not shared:
        raise ValueError("no test pair is scored by both the row and its reference experiment")
    pairs = row.drop_duplicates("id").set_index("id").loc[sorted(shared)]
    ids = list(pairs.index)
    y = pairs["label"].map(CLASSES.index).to_numpy(int)
    row_runs, ref_runs = seed_predictions(row, ids), seed_predictions(reference, ids)
    ones = np.ones((1, len(ids)))
    point = _seed_mean_scores(y, row_runs, ones)[0] - _seed_mean_scores(y, ref_runs, ones)[0]
    weights = met.patient_resamples(pairs["patient"].to_numpy(str), n, seed)
    deltas = _seed_mean_scores(y, row_runs, weights) - _seed_mean_scores(y, ref_runs, weights)
    tail = (1 - level) / 2 * 100
    low, high = np.nanpercentile(deltas, [tail, 100 - tail], axis=0)
    per_seed = _per_seed_differences(y, row, reference, ids)
    return {
        "delta_balanced_accuracy": float(point[0]),
        "delta_balanced_accuracy_ci95_low": float(low[0]),
        "delta_balanced_accuracy_ci95_high": float(high[0]),
        "delta_macro_f1": float(point[1]),
        "delta_macro_f1_ci95_low": float(low[1]),
        "delta_macro_f1_ci95_high": float(high[1]),
        "verdict": verdict(float(low[0]), float(high[0])),
        "delta_balanced_accuracy_seed_min": float(per_seed.min()) if len(per_seed) else float(point[0]),
        "delta_balanced_accuracy_seed_max": float(per_seed.max()) if len(per_seed) else float(point[0]),
        "n_pairs_compared": len(ids),
        "n_patients_compared": int(pairs["patient"].nunique()),
    }


def _per_seed_differences(y: np.ndarray, row: pd.DataFrame, reference: pd.DataFrame, ids: list[str]) -> np.ndarray:
    """Balanced-accuracy difference of each seed both rows ran (empty when they share none); a row without
    seeds (a baseline) is compared with each seed of the other."""
    row_seeds, ref_seeds = (set(frame["seed"]) if "seed" in frame else None for frame in (row, reference))
    if row_seeds is None and ref_seeds is None:
        return np.array([])
    out = []
    for value in sorted((row_seeds or ref_seeds) & (ref_seeds or row_seeds)):
        one = [frame[frame["seed"] == value] if "seed" in frame else frame for frame in (row, reference)]
        runs = [seed_predictions(frame, ids)[0] for frame in one]
        out.append(met.balanced_accuracy(y, runs[0]) - met.balanced_accuracy(y, runs[1]))
    return np.asarray(out)


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
