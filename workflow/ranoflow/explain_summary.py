"""Which experiments to explain, and the summary table of the explanation scores (pandas only, no torch)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

SCORES_FILE = "scores.tsv"
METRICS = ("tumour_share", "brain_share", "pointing_hit", "tumour_volume_share", "current_share")


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


def collect_scores(directories: Sequence[str | Path]) -> pd.DataFrame:
    """Every explain directory's scores.tsv stacked (they already carry experiment and fold)."""
    frames = [pd.read_csv(Path(d) / SCORES_FILE, sep="\t", keep_default_na=True) for d in directories]
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def summarise(scores: pd.DataFrame) -> pd.DataFrame:
    """One row per explained map (level `pair`) plus aggregates (level `aggregate`, pair `all`).

    Aggregates are per experiment, method, target and true class, and over all classes (label `all`):
    the number of maps, medians of the shares and the pointing-game hit rate (mean of hits).
    """
    if scores.empty:
        return pd.DataFrame(columns=["level", "experiment", "fold", "pair", "label", "method", "target", "n"])
    pairs = scores.assign(level="pair", n=1)
    keys = ["experiment", "method", "target"]
    aggregates = []
    for by_class in (True, False):
        grouped = pairs.assign(label=pairs["label"] if by_class else "all").groupby(
            [*keys, "label"], sort=False
        )
        agg = grouped.agg(
            n=("pair", "size"),
            **{m: (m, "median") for m in METRICS if m != "pointing_hit"},
            pointing_hit=("pointing_hit", "mean"),
            correct=("correct", "mean"),
        ).reset_index()
        aggregates.append(agg.assign(level="aggregate", fold="all", pair="all"))
    out = pd.concat([pairs, *aggregates], ignore_index=True)
    first = ["level", "experiment", "fold", "pair", "label", "predicted", "correct", "selection", "method", "target",
             "target_class", "n", *METRICS]
    return out[[c for c in first if c in out] + [c for c in out if c not in first]]
