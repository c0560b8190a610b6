"""What to explain (pandas only, no torch): the experiments, the test pairs of a fold and the target classes."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from ranoflow.vocabulary import CLASSES


def best_experiment(summary: pd.DataFrame, experiments: Sequence[str]) -> str:
    """The configured experiment with the highest median balanced accuracy (ties: the first in config order).

    Rows of summary.tsv that are not configured experiments (the majority-class and rule-based baselines) are
    ignored.
    """
    rows = summary[summary["experiment"].isin(experiments)].copy()
    rows["median_balanced_accuracy"] = pd.to_numeric(rows["median_balanced_accuracy"], errors="coerce")
    rows = rows.dropna(subset=["median_balanced_accuracy"])
    if rows.empty:
        raise ValueError(f"summary.tsv has no balanced accuracy for any of the experiments {list(experiments)}")
    rows["order"] = [list(experiments).index(e) for e in rows["experiment"]]
    return str(rows.sort_values(["median_balanced_accuracy", "order"], ascending=[False, True]).iloc[0]["experiment"])


def selection_table(
    summary: pd.DataFrame, experiments: Sequence[str], listed: Sequence[str], best: bool
) -> pd.DataFrame:
    """experiment, reason (best / listed / best,listed), median_balanced_accuracy: the experiments to explain."""
    chosen: dict[str, list[str]] = {}
    if best:
        chosen[best_experiment(summary, experiments)] = ["best"]
    for name in listed:
        chosen.setdefault(name, []).append("listed")
    accuracy = summary.drop_duplicates("experiment").set_index("experiment")["median_balanced_accuracy"]
    return pd.DataFrame(
        {
            "experiment": list(chosen),
            "reason": [",".join(r) for r in chosen.values()],
            "median_balanced_accuracy": [accuracy.get(e, "") for e in chosen],
        }
    )


def select_pairs(predictions: pd.DataFrame, n_per_class: int, classes: Sequence[str] = CLASSES) -> pd.DataFrame:
    """Up to `n_per_class` correctly and `n_per_class` wrongly classified pairs per true class.

    The most confident ones first (probability of the true class for correct pairs, of the predicted class
    for wrong ones), ties by pair id, so the choice is deterministic. Adds a `selection` column.
    """
    chosen = []
    for label in classes:
        rows = predictions[predictions["label"] == label]
        for selection, mask, prob_of in (
            ("correct", rows["predicted"] == label, "label"),
            ("wrong", rows["predicted"] != label, "predicted"),
        ):
            subset = rows[mask].copy()
            if subset.empty:
                continue
            subset["_confidence"] = [float(row[f"prob_{row[prob_of]}"]) for _, row in subset.iterrows()]
            subset = subset.sort_values(["_confidence", "id"], ascending=[False, True]).head(n_per_class)
            chosen.append(subset.drop(columns="_confidence").assign(selection=selection))
    if not chosen:
        return predictions.head(0).assign(selection=pd.Series(dtype=str))
    return pd.concat(chosen, ignore_index=True)


def explanation_targets(label: str, predicted: str, targets: Sequence[str]) -> list[tuple[str, str]]:
    """(target kind, class) pairs to explain; the label (true class) is skipped where it equals the prediction."""
    out: list[tuple[str, str]] = []
    for kind in targets:
        cls = predicted if kind == "predicted" else label
        if all(cls != seen for _, seen in out):
            out.append((kind, cls))
    return out
