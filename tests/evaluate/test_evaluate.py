"""Evaluate stage: metrics of an experiment over its folds, the majority baseline and the summary table,
against hand-computed values."""

from __future__ import annotations

import json

import numpy as np
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


def test_an_experiment_of_two_seeds_pools_its_runs_and_counts_each_pair_once(tmp_path):
    """training.seeds: the folds of every seed are runs of one row; a fold folder's seed comes from its
    metadata.json; the summary counts each test pair once and gives the spread of the seeds' medians."""
    runs = {  # (fold, seed) -> predictions; seed 0 balanced accuracies 0.75 and 0.5, seed 3 both 1.0
        (0, 0): _predictions(["CR", "PR", "SD", "PD"], ["CR", "PR", "PD", "PD"]),
        (1, 0): _predictions(["CR", "CR", "PD", "PD"], ["CR", "PD", "PD", "SD"]),
        (0, 3): _predictions(["CR", "PR", "SD", "PD"], ["CR", "PR", "SD", "PD"]),
        (1, 3): _predictions(["CR", "CR", "PD", "PD"], ["CR", "CR", "PD", "PD"]),
    }
    exp = experiments.resolve_experiment(
        "e", {"e": {"modalities": ["T1"], "input": "stack", "architecture": "densenet121", "ablation": "x"}}, {})
    dirs = []
    for (fold, seed), frame in runs.items():
        d = tmp_path / (f"fold_{fold}" if seed == 0 else f"fold_{fold}_seed{seed}")
        d.mkdir()
        frame.assign(patient=f"P{fold}").to_csv(d / "predictions.tsv", sep="\t", index=False)
        (d / "metrics.json").write_text(json.dumps({"fold": fold, "best_epoch": 1, "left_out": []}))
        (d / "metadata.json").write_text(json.dumps({"fold": fold, "seed": seed}))
        dirs.append(d)
    doc = aggregate_experiment(exp, dirs, bootstrap=100)
    assert [(r["fold"], r["seed"]) for r in doc["folds"]] == [(0, 0), (0, 3), (1, 0), (1, 3)]
    assert doc["n_folds"] == 2 and doc["median_balanced_accuracy"] == pytest.approx(0.875)  # of 0.75, 1, 0.5, 1
    assert doc["seeds"]["median_balanced_accuracy"] == {"0": 0.625, "3": 1.0}
    assert doc["seeds"]["std_balanced_accuracy"] == pytest.approx(np.std([0.625, 1.0], ddof=1))
    row = summary_table([doc]).iloc[0]
    assert row["n_pairs"] == 8 and row["n_seeds"] == 2 and row["chance_per_fold"] == "0.25,0.5"
    assert row["seed_std_balanced_accuracy"] == pytest.approx(0.2652, abs=1e-4)


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


def test_macro_f1_counts_only_the_classes_present():
    labels = ["PR", "SD", "PD", "PD"]  # no CR in this fold
    codes = [CLASSES.index(c) for c in labels]
    result = metrics.classification_metrics(codes, codes)
    assert result["macro_f1"] == 1.0 and result["balanced_accuracy"] == 1.0
    assert result["classes_absent"] == ["CR"] and result["chance_balanced_accuracy"] == pytest.approx(1 / 3)


def test_bootstrap_resamples_patients_not_pairs():
    # Patient A: 10 PD pairs, all right; patient B: 10 SD pairs, all called PD. Resampling pairs nearly always
    # keeps both classes (balanced accuracy 0.5); resampling patients draws A twice or B twice a quarter of
    # the time each, so the interval spans 0 to 1.
    y_true = [3] * 10 + [2] * 10
    y_pred = [3] * 20
    patients = ["A"] * 10 + ["B"] * 10
    assert metrics.bootstrap_ci(y_true, y_pred, n=400, seed=1) == (0.5, 0.5)
    assert metrics.bootstrap_ci(y_true, y_pred, n=400, seed=1, groups=patients) == (0.0, 1.0)


def _row_doc(name, frames):
    from ranoflow.evaluate.experiment_metrics import summarise_predictions

    return summarise_predictions(name, frames, {"ablation": "x"}, bootstrap=20)


def test_every_summary_row_is_scored_on_the_same_test_pairs():
    from ranoflow.evaluate.common_pairs import compare_rows

    labels = {"a1": "PD", "a2": "SD", "a3": "PR", "b1": "PD", "b2": "SD", "b3": "SD", "c1": "CR", "c2": "PR"}
    pairs = pd.DataFrame({"id": list(labels), "patient": [i[0] for i in labels], "label": list(labels.values())})
    folds = {"protocol": "patient", "folds": [
        {"fold": 0, "train": ["c1", "c2"], "test": ["a1", "a2", "a3", "b1", "b2", "b3"]},
        {"fold": 1, "train": ["a1", "a2", "a3"], "test": ["c1", "c2"]}]}
    test_ids = [*folds["folds"][0]["test"], *folds["folds"][1]["test"]]
    # the experiment could not read a3 (say, no nadir study), and calls b3 PD
    experiment = _predictions([labels[i] for i in test_ids if i != "a3"],
                              [labels[i] if i != "b3" else "PD" for i in test_ids if i != "a3"])
    experiment["id"] = [i for i in test_ids if i != "a3"]
    experiment["fold"] = [0] * 5 + [1] * 2
    # the rule-based baseline, in its own file format (text columns, a pair it could not score left empty)
    baseline = pd.DataFrame({"id": test_ids, "patient": [i[0] for i in test_ids],
                             "label": [labels[i] for i in test_ids],
                             "predicted": [labels[i] if i != "c2" else "" for i in test_ids],
                             "fold": ["0"] * 6 + ["1"] * 2}).astype(str)
    own = {
        "cnn": _row_doc("cnn", {f: experiment[experiment["fold"] == f] for f in (0, 1)}),
        "rules": _row_doc("rules", {0: _predictions(["PD"], ["PD"]), 1: _predictions(["CR"], ["CR"])}),
        "majority_class": majority_baseline(pairs, folds, bootstrap=0),
    }
    from ranoflow.evaluate.majority import majority_predictions

    predictions = {"cnn": experiment, "rules": baseline,
                   "majority_class": pd.concat(majority_predictions(pairs, folds).values())}
    docs, per_fold, _ = compare_rows(own, predictions, folds, pairs, bootstrap=20)

    common = {0: ["a1", "a2", "b1", "b2", "b3"], 1: ["c1"]}
    assert per_fold["n_pairs"].tolist() == [5, 1]
    assert per_fold["not_scored_by"].tolist() == ["cnn: 1", "rules: 1"]
    assert per_fold["classes_absent"].tolist() == ["CR,PR", "PR,SD,PD"]
    assert per_fold["chance_balanced_accuracy"].tolist() == pytest.approx([1 / 2, 1.0])
    for doc in docs:
        assert [f["n"] for f in doc["folds"]] == [len(ids) for ids in common.values()]
    cnn = next(d for d in docs if d["experiment"] == "cnn")
    # fold 0 on the common pairs: PD 2/2, SD 2/3 -> 5/6; fold 1: CR 1/1
    assert cnn["balanced_accuracy"]["per_fold"] == pytest.approx([5 / 6, 1.0])
    assert cnn["own"]["n_pairs"] == 7
    table = summary_table(docs)
    assert table["n_pairs"].nunique() == 1 and table["n_pairs"].iloc[0] == 6
    assert dict(zip(table["experiment"], table["own_n_pairs"])) == {"cnn": 7, "rules": 2, "majority_class": 8}
    assert set(table["chance_per_fold"]) == {"0.5,1"}
