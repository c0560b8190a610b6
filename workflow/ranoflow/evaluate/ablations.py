"""Ablations as paired differences: each row of summary.tsv against its reference experiment on the same test
pairs, with a 95 % CI from a bootstrap that resamples patients (both rows keep the same resampled pairs), and
a verdict: better or worse when the CI of the balanced-accuracy difference excludes 0, else indistinguishable.
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
    "verdict",
]
# The rule baseline given only the studies an experiment reads: the most its references allow.
CEILINGS = {("previous",): "rano_rules_previous", ("baseline", "nadir"): "rano_rules"}


def _scores(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    return met.balanced_accuracy(y, p), met.macro_f1(y, p)


def paired_difference(
    row: pd.DataFrame, reference: pd.DataFrame, n: int = 2000, seed: int = 0, level: float = 0.95
) -> dict:
    """Difference (row - reference) of pooled balanced accuracy and macro-F1 over the pairs both scored, with
    percentile CIs from `n` bootstrap resamples of patients.

    Both frames hold id, patient, label and predicted columns."""
    both = row.merge(reference, on=["id", "patient", "label"], suffixes=("", "_reference"))
    if both.empty:
        raise ValueError("no test pair is scored by both the row and its reference experiment")
    y = both["label"].map(CLASSES.index).to_numpy(int)
    p_row = both["predicted"].map(CLASSES.index).to_numpy(int)
    p_ref = both["predicted_reference"].map(CLASSES.index).to_numpy(int)
    ba_row, f1_row = _scores(y, p_row)
    ba_ref, f1_ref = _scores(y, p_ref)
    patients = both["patient"].to_numpy(str)
    members = {patient: np.flatnonzero(patients == patient) for patient in np.unique(patients)}
    groups = list(members.values())
    rng = np.random.default_rng(seed)
    deltas = np.empty((n, 2))
    for b in range(n):
        drawn = np.concatenate([groups[i] for i in rng.integers(0, len(groups), len(groups))])
        row_scores, ref_scores = _scores(y[drawn], p_row[drawn]), _scores(y[drawn], p_ref[drawn])
        deltas[b] = np.subtract(row_scores, ref_scores)
    tail = (1 - level) / 2 * 100
    low, high = np.nanpercentile(deltas, [tail, 100 - tail], axis=0)
    return {
        "delta_balanced_accuracy": ba_row - ba_ref,
        "delta_balanced_accuracy_ci95_low": float(low[0]),
        "delta_balanced_accuracy_ci95_high": float(high[0]),
        "delta_macro_f1": f1_row - f1_ref,
        "delta_macro_f1_ci95_low": float(low[1]),
        "delta_macro_f1_ci95_high": float(high[1]),
        "verdict": verdict(float(low[0]), float(high[0])),
        "n_pairs_compared": len(both),
        "n_patients_compared": len(groups),
    }


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
