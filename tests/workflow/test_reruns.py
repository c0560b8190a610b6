"""Edits rerun exactly what they touch: on one completed tiny demo run, `snakemake -n` with an edited config
plans the affected jobs and nothing else (params reach every rule through `params:`); code is tracked by
content, so a moved or touched copy of the run plans nothing and an edited stage plans that stage."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest
from demo_run import EXPERIMENTS, FOLDS, merge, plan, rules_of, wildcard_values, write_config

pytestmark = pytest.mark.slow

# Rules upstream of training; none may be planned by an edit of training or experiments.
INDEX_RULES = {"synthetic_dataset", "dataset", "index", "pairs", "folds"}
PREPROCESS_RULES = {"atlas_grid", "skull_strip", "register", "preprocess_manifest"}
# the tensor store and its per-reference-set listings: rerun only for the grid and the images
STORE_RULES = {"tensor_grid", "study_tensors", "tensor_set"}


@pytest.fixture(scope="module")
def completed(tiny_demo) -> tuple[Path, dict]:
    """The tiny demo run to the default target (tests/conftest.py), shared by every test here."""
    return tiny_demo


def plan_with(completed: tuple[Path, dict], edit: dict, name: str, *args: str):
    workdir, config = completed
    return plan(workdir, write_config(workdir, merge(config, edit), name), *args)


def test_unchanged_config_plans_nothing(completed):
    workdir, config = completed
    assert plan(workdir, write_config(workdir, config, "same.yaml")) == set()


def test_learning_rate_of_one_experiment_reruns_only_that_experiment(completed):
    jobs = plan_with(completed, {"experiments": {"exp_a": {"training": {"lr": 0.5}}}}, "lr.yaml")
    train = {(dict(wc)["experiment"], dict(wc)["fold"]) for rule, wc in jobs if rule == "train"}
    assert train == {("exp_a", str(f)) for f in range(FOLDS)}
    assert all(dict(wc).get("experiment", "exp_a") == "exp_a" for _, wc in jobs), jobs
    assert wildcard_values(jobs, "aggregate_experiment", "experiment") == {"exp_a"}
    assert {"summary", "explain"} <= rules_of(jobs), rules_of(jobs)
    assert not rules_of(jobs) & (INDEX_RULES | PREPROCESS_RULES | STORE_RULES | {"pretrain"}), rules_of(jobs)


def test_a_further_training_seed_adds_its_train_jobs_and_reruns_no_trained_model(completed):
    """training.seeds: each further seed is one train_seed job per experiment x fold in its own folder; the
    models of training.seed are not retrained, only the experiments' metrics and what reads them rerun."""
    jobs = plan_with(completed, {"training": {"seeds": [5]}}, "seeds.yaml")
    runs = {(dict(wc)["experiment"], dict(wc)["fold"], dict(wc)["seed"]) for rule, wc in jobs if rule == "train_seed"}
    assert runs == {(e, str(f), "5") for e in EXPERIMENTS for f in range(FOLDS)}
    assert "train" not in rules_of(jobs) and wildcard_values(jobs, "aggregate_experiment", "experiment") == set(EXPERIMENTS)
    assert not rules_of(jobs) & (INDEX_RULES | PREPROCESS_RULES | STORE_RULES | {"explain", "export_model"}), rules_of(jobs)


def test_training_grid_reruns_the_store_once_per_study_and_every_job_reading_it(completed):
    """An edit of training.image_size reruns the tensor store (one study_tensors job per paired study,
    however many experiments read it) and every train job, nothing of the index or preprocessing."""
    workdir, config = completed
    size = config["training"]["image_size"]
    jobs = plan_with(completed, {"training": {"image_size": [s + 8 for s in size]}}, "grid.yaml")
    stored = [(dict(wc)["patient"], dict(wc)["study"]) for rule, wc in jobs if rule == "study_tensors"]
    manifest = pd.read_csv(workdir / "results/preprocessed/manifest.tsv", sep="\t", dtype=str)
    assert sorted(stored) == sorted(set(stored)) == sorted(zip(manifest["patient"], manifest["study"]))
    assert len(EXPERIMENTS) > 1  # several experiments, one store
    train = {(dict(wc)["experiment"], dict(wc)["fold"]) for rule, wc in jobs if rule == "train"}
    assert train == {(e, str(f)) for e in EXPERIMENTS for f in range(FOLDS)}
    assert {"tensor_grid", "aggregate_experiment", "summary", "explain"} <= rules_of(jobs)
    assert not rules_of(jobs) & (INDEX_RULES | PREPROCESS_RULES), rules_of(jobs)


def test_preprocessing_setting_reruns_preprocessing_and_everything_below(completed):
    workdir, config = completed
    jobs = plan_with(completed, {"preprocessing": {"n4": not config["preprocessing"]["n4"]}}, "n4.yaml")
    manifest = pd.read_csv(workdir / "results/preprocessed/manifest.tsv", sep="\t", dtype=str)
    registered = {(d["patient"], d["study"]) for r, wc in jobs if r == "register" for d in [dict(wc)]}
    assert registered == set(zip(manifest["patient"], manifest["study"]))
    assert "preprocess_manifest" in rules_of(jobs)
    stored = {(d["patient"], d["study"]) for r, wc in jobs if r == "study_tensors" for d in [dict(wc)]}
    assert stored == registered  # new images, a new store
    train = {(dict(wc)["experiment"], dict(wc)["fold"]) for rule, wc in jobs if rule == "train"}
    assert train == {(e, str(f)) for e in EXPERIMENTS for f in range(FOLDS)}
    assert {"aggregate_experiment", "summary", "explain"} <= rules_of(jobs)
    assert not rules_of(jobs) & INDEX_RULES, rules_of(jobs)


def test_new_experiment_plans_only_the_new_one(completed):
    new = {"exp_c": {"ablation": "demo", "modalities": ["CT1"], "input": "stack", "architecture": "densenet121"}}
    jobs = plan_with(completed, {"experiments": new}, "new.yaml")
    train = {(dict(wc)["experiment"], dict(wc)["fold"]) for rule, wc in jobs if rule == "train"}
    assert train == {("exp_c", str(f)) for f in range(FOLDS)}
    assert wildcard_values(jobs, "aggregate_experiment", "experiment") == {"exp_c"}
    assert "summary" in rules_of(jobs)
    assert "explain" not in rules_of(jobs)  # only exp_a is explained
    assert not rules_of(jobs) & (INDEX_RULES | PREPROCESS_RULES | STORE_RULES), rules_of(jobs)  # the store is shared


def test_switching_to_the_best_experiment_plans_the_selection(completed):
    """`explain.best: true` on a finished run: the choice of experiments is the summary's param, so the
    explain_selection checkpoint runs (and then the best experiment's maps), and no training."""
    jobs = plan_with(completed, {"explain": {"best": True}}, "best.yaml")
    assert {"explain_selection", "explain_summary"} <= rules_of(jobs), rules_of(jobs)
    assert not rules_of(jobs) & (INDEX_RULES | PREPROCESS_RULES | {"train", "pretrain"}), rules_of(jobs)


def test_forcerun_one_rule_until_itself(completed):
    """The README's single-rule rerun: `snakemake -R train --until train` redoes only training."""
    workdir, config = completed
    jobs = plan(workdir, write_config(workdir, config, "force.yaml"), "-R", "train", "--until", "train")
    assert rules_of(jobs) == {"train"}
    assert len(jobs) == len(EXPERIMENTS) * FOLDS


def moved_copy(completed: tuple[Path, dict], dest: Path) -> tuple[Path, Path]:
    """The finished run (results/ and .snakemake/ included) copied as `cp -a` would, and its config file."""
    workdir, config = completed
    shutil.copytree(workdir, dest, symlinks=True)
    return dest, write_config(dest, config, "moved.yaml")


def append_line(path: Path) -> None:
    path.write_text(path.read_text() + "\n# an edit of this stage\n")


def test_moved_copy_plans_nothing_and_neither_does_touching_the_code(completed, tmp_path):
    copy, configfile = moved_copy(completed, tmp_path / "elsewhere" / "run")
    assert plan(copy, configfile) == set()
    now = time.time() + 60
    for path in (copy / "workflow").rglob("*"):
        os.utime(path, (now, now))
    assert plan(copy, configfile) == set()


def test_code_edit_in_one_stage_plans_that_stage_and_what_follows(completed, tmp_path):
    copy, configfile = moved_copy(completed, tmp_path / "run")
    append_line(copy / "workflow/ranoflow/baseline/criteria.py")
    rules = rules_of(plan(copy, configfile)) - {"all"}
    # volumes_gbm reads rano_expert's answer as a feature and the image-derived row applies the same
    # criteria, so the rules' code reaches both
    assert rules == {"rano_baseline", "volumes_gbm", "rano_baseline_plot", "rano_expert_images",
                     "rano_expert_images_plot", "summary", "cohort_summary", "results_table", "front_page"}

    copy, configfile = moved_copy(completed, tmp_path / "run2")
    append_line(copy / "workflow/ranoflow/train/fold.py")
    jobs = plan(copy, configfile)
    train = {(dict(wc)["experiment"], dict(wc)["fold"]) for rule, wc in jobs if rule == "train"}
    assert train == {(e, str(f)) for e in EXPERIMENTS for f in range(FOLDS)}
    assert rules_of(jobs) - {"all"} == {
        "train", "aggregate_experiment", "summary", "results_table", "explain", "explain_summary", "explanations_page",
        "export_model", "training_curves", "front_page",
    }


# What a preprocessed image feeds: every rule downstream of `register` (the image-derived rule row too).
FROM_REGISTER = {"register", "preprocess_manifest", "qc_table", "study_tensors", "tensor_set", "image_measures",
                 "rano_expert_images", "rano_expert_images_plot", "train", "aggregate_experiment",
                 "summary", "results_table", "explain", "explain_summary", "explanations_page", "export_model",
                 "training_curves", "front_page"}
FROM_TRAIN = {"train", "aggregate_experiment", "summary", "results_table", "explain", "explain_summary",
              "explanations_page", "export_model", "training_curves", "front_page"}
FROM_EXPLAIN = {"explain", "explain_summary", "explanations_page"}


def sibling_edits(config: dict) -> list[tuple[str, dict, set[str]]]:
    """(setting, edit giving it the value of a sibling setting, the rules that edit must plan besides
    software_versions, which records the whole config)."""
    pre, train = config["preprocessing"], config["training"]
    explain = config["explain"]
    return [
        # the tiny run has spacing 6, registration 6, margin 5: the values as a set stay {5, 6}
        ("preprocessing.spacing_mm", {"preprocessing": {"spacing_mm": pre["margin_mm"]}},
         {"atlas_grid", "tensor_grid"} | FROM_REGISTER),
        ("preprocessing.margin_mm", {"preprocessing": {"margin_mm": pre["spacing_mm"]}},
         {"atlas_grid", "tensor_grid"} | FROM_REGISTER),
        ("preprocessing.registration_mm", {"preprocessing": {"registration_mm": pre["margin_mm"]}},
         {"atlas_grid", "tensor_grid"} | FROM_REGISTER),
        # the skull strip runs inside the register job (skull_strip.separate_job: false)
        ("preprocessing.qc.min_brain_ml", {"preprocessing": {"qc": {"min_brain_ml": pre["seed"]}}},
         FROM_REGISTER),
        ("training.max_epochs", {"training": {"max_epochs": train["batch_size"]}}, FROM_TRAIN),
        ("training.batch_size", {"training": {"batch_size": train["image_size"][0]}}, FROM_TRAIN),
        ("explain.n_per_class", {"explain": {"n_per_class": explain["n_per_class"] + 1}}, FROM_EXPLAIN),
        ("explain.methods", {"explain": {"methods": [*explain["methods"], "gradcam"]}}, FROM_EXPLAIN),
    ]


def test_a_setting_given_a_siblings_value_reruns_exactly_its_rules(completed):
    """Snakemake compares a rule's params as a set of values without names: each rule's settings travel
    as one named dict, so giving a setting the value of another one still plans the rules it feeds."""
    workdir, config = completed
    assert config["preprocessing"]["spacing_mm"] == config["preprocessing"]["registration_mm"]
    assert config["preprocessing"]["margin_mm"] != config["preprocessing"]["spacing_mm"]
    failures = []
    for number, (setting, edit, expected) in enumerate(sibling_edits(config)):
        planned = rules_of(plan_with(completed, edit, f"sibling_{number}.yaml")) - {"all"}
        if planned != expected | {"software_versions"}:
            failures.append(f"{setting}: planned {sorted(planned)}, expected {sorted(expected)}")
    assert not failures, "\n".join(failures)
