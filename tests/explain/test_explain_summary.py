"""Choice of the experiments to explain and the summary table, against hand-computed values."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from ranoflow.explain.selection import best_experiment, selection_table
from ranoflow.explain.summary import summarise

SUMMARY = pd.DataFrame(
    {
        "experiment": ["a", "b", "c", "majority_class", "rano_rules"],
        "median_balanced_accuracy": ["0.6", "0.8", "0.8", "0.9", "0.95"],
    }
)


def test_best_ignores_baseline_rows_and_breaks_ties_by_config_order() -> None:
    assert best_experiment(SUMMARY, ["a", "b", "c"]) == "b"
    assert best_experiment(SUMMARY, ["c", "b", "a"]) == "c"
    with pytest.raises(ValueError, match="no balanced accuracy"):
        best_experiment(SUMMARY, ["zzz"])


def test_selection_merges_best_and_listed() -> None:
    table = selection_table(SUMMARY, ["a", "b", "c"], listed=["a", "b"], best=True)
    assert table.to_dict("list") == {
        "experiment": ["b", "a"],
        "reason": ["best,listed", "listed"],
        "median_balanced_accuracy": ["0.8", "0.6"],
    }
    assert selection_table(SUMMARY, ["a", "b"], listed=["a"], best=False)["experiment"].tolist() == ["a"]


def test_summary_has_pair_rows_and_per_class_aggregates() -> None:
    rows = [
        ("e", 0, "p1", "PD", "PD", "saliency", 0.6, 1.0),
        ("e", 1, "p2", "PD", "SD", "saliency", 0.2, 0.0),
        ("e", 0, "p3", "CR", "CR", "saliency", 0.4, 1.0),
        ("e", 0, "p1", "PD", "PD", "gradcam", float("nan"), float("nan")),  # all-zero Grad-CAM
    ]
    scores = pd.DataFrame(
        [
            {"experiment": e, "fold": f, "pair": p, "label": l, "predicted": pr, "correct": int(l == pr),
             "method": m, "target": "predicted", "target_class": pr, "tumour_share": t, "brain_share": 0.9,
             "pointing_hit": h, "tumour_volume_share": 0.1, "current_share": 0.5}
            for e, f, p, l, pr, m, t, h in rows
        ]
    )
    summary = summarise(scores)
    assert (summary["level"] == "pair").sum() == 4
    agg = summary[summary["level"] == "aggregate"].set_index(["method", "label"])
    assert agg.loc[("saliency", "PD"), "tumour_share"] == pytest.approx(0.4)
    assert agg.loc[("saliency", "PD"), "pointing_hit"] == pytest.approx(0.5)
    assert agg.loc[("saliency", "PD"), "n"] == 2
    assert agg.loc[("saliency", "all"), "tumour_share"] == pytest.approx(0.4)
    assert agg.loc[("saliency", "all"), "correct"] == pytest.approx(2 / 3)
    assert math.isnan(agg.loc[("gradcam", "PD"), "tumour_share"])
    assert list(summary.columns[:4]) == ["level", "experiment", "fold", "pair"]
    assert summarise(pd.DataFrame()).empty
