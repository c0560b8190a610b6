"""Evaluate stage: metrics of an experiment over its folds, the majority baseline and the summary table,
against hand-computed values."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from ranoflow.evaluate import metrics
from ranoflow.evaluate.experiment_metrics import aggregate_experiment
from ranoflow.evaluate.majority import majority_baseline
from ranoflow.evaluate.summary_table import summary_table
from ranoflow.train import experiments
from ranoflow.vocabulary import CLASSES


def _predictions(labels, predicted):
    frame = pd.DataFrame({"id": [f"p{i}" for i in range(len(labels))], "label": labels, "predicted": predicted})
    for c in CLASSES:
        frame[f"prob_{c}"] = (frame["predicted"] == c).astype(float)
    return frame


def test_aggregation_matches_hand_computed_values(tmp_path):
    folds = {
        0: _predictions(["CR", "PR", "SD", "PD"], ["CR", "PR", "PD", "PD"]),  # recalls 1, 1, 0, 1 -> 0.75
        1: _predictions(["CR", "CR", "PD", "PD"], ["CR", "PD", "PD", "SD"]),  # recalls 0.5, 0.5 -> 0.5
    }
    exp = experiments.resolve_experiment(
        "e", {"e": {"modalities": ["T1"], "input": "stack", "architecture": "densenet121", "ablation": "x"}}, {})
    dirs = []
    for fold, frame in folds.items():
        d = tmp_path / f"fold_{fold}"
        d.mkdir()
        frame.assign(patient="P").to_csv(d / "predictions.tsv", sep="\t", index=False)
        (d / "metrics.json").write_text(json.dumps({"fold": fold, "protocol": "patient", "leaky": False,
                                                    "best_epoch": 1, "epochs_run": 2, "left_out": []}))
        dirs.append(d)
    doc = aggregate_experiment(exp, dirs, bootstrap=200)
    ba = doc["balanced_accuracy"]
    assert ba["per_fold"] == [0.75, 0.5]
    assert ba["median"] == pytest.approx(0.625) and ba["mean"] == pytest.approx(0.625)
    assert ba["q25"] == pytest.approx(0.5625) and ba["q75"] == pytest.approx(0.6875)
    assert ba["iqr"] == pytest.approx(0.125)
    pooled = doc["pooled"]
    assert pooled["balanced_accuracy"] == pytest.approx((2 / 3 + 1 + 0 + 2 / 3) / 4)
    assert pooled["confusion"] == [[2, 0, 0, 1], [0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 1, 2]]
    assert pooled["per_class"]["PD"]["precision"] == pytest.approx(2 / 4)
    assert pooled["per_class"]["SD"]["f1"] == 0.0
    low, high = pooled["balanced_accuracy_ci95"]
    assert 0 <= low <= pooled["balanced_accuracy"] <= high <= 1
    assert pooled["roc_auc"]["PR"] == pytest.approx(1.0)  # the only PR pair is the only PR prediction
    assert doc["ablation"] == "x" and doc["protocol"] == "patient" and doc["folds"][0]["epochs_run"] == 2


def test_majority_baseline_and_summary_order():
    pairs = pd.DataFrame({"id": list("abcdefgh"), "label": ["PD", "PD", "SD", "CR", "PD", "SD", "SD", "PR"]})
    folds = {"protocol": "patient", "folds": [{"fold": 0, "train": list("abc"), "test": list("efgh")},
                                              {"fold": 1, "train": list("efg"), "test": list("abcd")}]}
    baseline = majority_baseline(pairs, folds, bootstrap=0)
    # fold 0 predicts PD (2 of 3): recall PD 1, SD 0, PR 0 -> 1/3; fold 1 predicts SD: recall PD 0, SD 1, CR 0 -> 1/3
    assert baseline["balanced_accuracy"]["per_fold"] == pytest.approx([1 / 3, 1 / 3])
    good = dict(baseline, experiment="good", balanced_accuracy={**baseline["balanced_accuracy"], "median": 0.9})
    table = summary_table([baseline, good])
    assert table["experiment"].tolist() == ["good", "majority_class"]
    assert table.loc[1, "ablation"] == "baseline"
    assert {"experiment", "ablation", "protocol", "median_balanced_accuracy"} <= set(table.columns)


def test_fold_statistics_and_bootstrap():
    stats = metrics.fold_statistics([0.2, 0.4, 0.6, 0.8, 1.0])
    assert stats["median"] == pytest.approx(0.6) and stats["iqr"] == pytest.approx(0.4)
    assert metrics.bootstrap_ci([0, 1, 2, 3], [0, 1, 2, 3], n=50) == (1.0, 1.0)
