"""results/explain/summary.tsv: every explained map's scores and their medians per class (pandas only)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

SCORES_FILE = "scores.tsv"
# Columns of an explain job's scores.tsv, in order (one row per pair, method and target class).
SCORE_COLUMNS = [
    "experiment", "fold", "pair", "patient", "label", "predicted", "correct", "selection", "method", "target",
    "target_class", "tumour_share", "brain_share", "pointing_hit", "pointing", "tumour_volume_share",
    "current_share", "previous_share", "peak_voxel", "frames", "map", "figure",
]
METRICS = ("tumour_share", "brain_share", "pointing_hit", "tumour_volume_share", "current_share")


def collect_scores(directories: Sequence[str | Path]) -> pd.DataFrame:
    """Every explain directory's scores.tsv stacked (they already carry experiment and fold)."""
    frames = [pd.read_csv(Path(d) / SCORES_FILE, sep="\t", keep_default_na=True) for d in directories]
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def summarise(scores: pd.DataFrame) -> pd.DataFrame:
    """One row per explained map (level `pair`) plus aggregates (level `aggregate`, pair `all`).

    Aggregates are per experiment, method, target and true class, and over all classes (label `all`):
    the number of maps, medians of the shares and the pointing-game hit rate (mean of hits) over the
    `n_pointing` maps where the game applies (pairs with no tumour in any study are left out, not missed).
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
            n_pointing=("pointing_hit", "count"),
            correct=("correct", "mean"),
        ).reset_index()
        aggregates.append(agg.assign(level="aggregate", fold="all", pair="all"))
    out = pd.concat([pairs, *aggregates], ignore_index=True)
    first = ["level", "experiment", "fold", "pair", "label", "predicted", "correct", "selection", "method", "target",
             "target_class", "n", *METRICS, "n_pointing"]
    return out[[c for c in first if c in out] + [c for c in out if c not in first]]
