"""Ablation rows as paired differences with a patient-bootstrap CI and a verdict (issue 19)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ranoflow.evaluate.ablations import ablation_differences, information_ceiling, paired_difference, verdict
from ranoflow.evaluate.summary_table import SUMMARY_COLUMNS
from ranoflow.vocabulary import CLASSES


def _predictions(accuracy: float, seed: int, n_patients: int = 30, per_patient: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_patients):
        for k in range(per_patient):
            label = CLASSES[(p + k) % 4]
            right = rng.random() < accuracy
            wrong = CLASSES[(CLASSES.index(label) + 1 + rng.integers(3)) % 4]
            rows.append({"id": f"P{p}_{k}", "patient": f"P{p}", "label": label, "predicted": label if right else wrong})
    return pd.DataFrame(rows)


def test_a_known_difference_has_a_ci_excluding_zero():
    truth = _predictions(1.0, 0)
    strong, weak = _predictions(0.9, 1), _predictions(0.4, 2)
    strong["label"] = weak["label"] = truth["label"]
    result = paired_difference(strong, weak, n=500, seed=0)
    assert result["delta_balanced_accuracy"] > 0.3
    assert 0 < result["delta_balanced_accuracy_ci95_low"] < result["delta_balanced_accuracy"]
    assert result["delta_balanced_accuracy"] < result["delta_balanced_accuracy_ci95_high"]
    assert result["delta_macro_f1_ci95_low"] > 0
    assert result["verdict"] == "better"
    assert paired_difference(weak, strong, n=500, seed=0)["verdict"] == "worse"
    assert result["n_patients_compared"] == 30


def test_identical_rows_are_indistinguishable():
    frame = _predictions(0.6, 3)
    result = paired_difference(frame, frame.copy(), n=200, seed=0)
    assert result["delta_balanced_accuracy"] == 0
    assert result["delta_balanced_accuracy_ci95_low"] == result["delta_balanced_accuracy_ci95_high"] == 0
    assert result["verdict"] == "indistinguishable"


def test_verdict_needs_the_ci_to_exclude_zero():
    assert [verdict(0.01, 0.2), verdict(-0.2, -0.01), verdict(-0.1, 0.1)] == ["better", "worse", "indistinguishable"]


def test_rows_compare_with_their_own_or_the_default_reference():
    common = {"ref": _predictions(0.5, 4), "a": _predictions(0.5, 5), "b": _predictions(0.5, 6)}
    experiments = {"ref": {"reference": None}, "a": {"reference": None}, "b": {"reference": "a"}}
    out = ablation_differences(common, experiments, "ref", n=100)
    assert out["ref"] == {"reference_experiment": "ref", "verdict": "reference"}
    assert out["a"]["reference_experiment"] == "ref" and out["b"]["reference_experiment"] == "a"
    assert set(out["a"]) >= {"delta_balanced_accuracy", "delta_macro_f1_ci95_high", "verdict"}
    assert ablation_differences(common, experiments, None, n=10)["a"] == {}
    with pytest.raises(ValueError, match="missing"):
        ablation_differences(common, experiments, "missing", n=10)


def test_information_ceiling_is_the_rule_given_the_same_studies():
    rows = {"rano_rules", "rano_rules_previous"}
    assert information_ceiling(["previous"], rows) == "rano_rules_previous"
    assert information_ceiling(["baseline", "nadir"], rows) == "rano_rules"
    assert information_ceiling(["previous", "baseline", "nadir"], rows) == "rano_rules"
    assert information_ceiling(["previous", "nadir"], rows) == ""
    assert information_ceiling(["previous"], set()) == ""


def test_summary_has_difference_ci_and_verdict_columns():
    for column in ("reference_experiment", "delta_balanced_accuracy", "delta_balanced_accuracy_ci95_low",
                   "delta_balanced_accuracy_ci95_high", "delta_macro_f1", "delta_macro_f1_ci95_low",
                   "delta_macro_f1_ci95_high", "verdict", "information_ceiling", "ceiling_median_balanced_accuracy"):
        assert column in SUMMARY_COLUMNS


def test_ablation_figure_is_written_grouped_by_ablation(tmp_path):
    from ranoflow.evaluate.figures import plot_ablations

    table = pd.DataFrame([
        {"experiment": "a", "ablation": "reference", "reference_experiment": "r", "verdict": "better",
         "delta_balanced_accuracy": 0.1, "delta_balanced_accuracy_ci95_low": 0.02,
         "delta_balanced_accuracy_ci95_high": 0.2},
        {"experiment": "r", "ablation": "reference", "verdict": "reference"},
    ])
    plot_ablations(table, tmp_path / "ablations.png")
    assert (tmp_path / "ablations.png").stat().st_size > 1000


def test_a_reference_that_is_no_experiment_is_refused_naming_the_key():
    from ranoflow.evaluate.ablations import reference_problem

    experiments = {"a": {"reference": None}, "b": {"reference": "a"}}
    assert reference_problem("a", experiments) == ""
    assert reference_problem(None, experiments) == ""
    problem = reference_problem("ct1_flair_previous", experiments)
    assert problem.startswith("evaluate.reference_experiment is 'ct1_flair_previous'") and "['a', 'b']" in problem
    assert reference_problem("a", {**experiments, "c": {"reference": "zz"}}).startswith("experiments.c.reference")


def _seeded(*frames: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([frame.assign(seed=s) for s, frame in enumerate(frames)], ignore_index=True)


def test_a_row_of_several_seeds_is_averaged_over_its_seeds_with_their_spread():
    truth = _predictions(1.0, 0)
    good, poor, reference = _predictions(0.9, 1), _predictions(0.5, 2), _predictions(0.7, 3)
    for frame in (good, poor, reference):
        frame["label"] = truth["label"]
    single = {name: paired_difference(frame, reference, n=300, seed=0) for name, frame in [("good", good), ("poor", poor)]}
    both = paired_difference(_seeded(good, poor), reference, n=300, seed=0)
    # each pair counted once, the difference is the mean of the seeds' differences, their range the spread
    assert both["n_pairs_compared"] == len(truth)
    mean = (single["good"]["delta_balanced_accuracy"] + single["poor"]["delta_balanced_accuracy"]) / 2
    assert both["delta_balanced_accuracy"] == pytest.approx(mean)
    assert both["delta_balanced_accuracy_seed_min"] == pytest.approx(single["poor"]["delta_balanced_accuracy"])
    assert both["delta_balanced_accuracy_seed_max"] == pytest.approx(single["good"]["delta_balanced_accuracy"])
    # each seed's verdict against the reference (a row without seeds is compared with each seed of the other)
    assert both["verdict_per_seed"] == f"seed 0: {single['good']['verdict']}; seed 1: {single['poor']['verdict']}"
    assert single["good"]["verdict"] == "better" and single["poor"]["verdict"] == "worse"
    # two seeds of one row against the same seeds of its reference: seed s is compared with seed s
    paired = paired_difference(_seeded(good, poor), _seeded(good, poor), n=300, seed=0)
    assert paired["delta_balanced_accuracy"] == 0 and paired["verdict"] == "indistinguishable"
    assert paired["delta_balanced_accuracy_seed_min"] == paired["delta_balanced_accuracy_seed_max"] == 0


def test_the_bootstrap_draws_whole_patients_and_scores_as_scikit_learn():
    from ranoflow.evaluate import metrics

    rng = np.random.default_rng(4)
    y, p = rng.integers(0, 3, 60), rng.integers(0, 4, 60)
    patients = np.repeat(np.arange(15), 4)
    weights = metrics.patient_resamples(patients.astype(str), 50, seed=1)
    assert weights.shape == (50, 60) and (weights.sum(1) == 60).all()
    assert all(len(set(row[patients == k])) == 1 for row in weights for k in range(15))  # a patient is drawn whole
    ba, f1 = metrics.confusion_scores(metrics.weighted_confusion(y, p, weights))
    for row, b, f in zip(weights, ba, f1):
        drawn = np.repeat(np.arange(60), row.astype(int))
        assert b == pytest.approx(metrics.balanced_accuracy(y[drawn], p[drawn]))
        assert f == pytest.approx(metrics.macro_f1(y[drawn], p[drawn]))
