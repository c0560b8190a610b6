"""The baseline stage as a user runs it: a real Snakemake run on a tiny demo tree, up to every baseline row."""

import json
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from demo_run import check, plan, rules_of, snakemake, snapshot, tiny_config, write_config  # noqa: E402

ROWS = ("rano_rules", "rano_rules_previous", "rano_expert", "volumes_gbm")


def test_baseline_rows_on_the_tiny_demo(tmp_path):
    root = snapshot(tmp_path)
    configfile = write_config(root, tiny_config())
    targets = [f"results/metrics/{row}.json" for row in ROWS]
    check(snakemake(root, configfile, "--cores", "2", *targets))

    docs = {row: json.loads((root / "results" / "metrics" / f"{row}.json").read_text()) for row in ROWS}
    assert docs["rano_rules"]["oracle"] == "same rule that made the labels"  # the demo's labels come from it
    assert all(doc["reads"].startswith("oracle segmentation") for doc in docs.values())
    assert [docs[row]["learns"] for row in ROWS] == [False, False, False, True]
    pairs = pd.read_csv(root / "results" / "index" / "pairs.tsv", sep="\t")
    for row in ROWS:
        predictions = root / "results" / "baseline" / f"{row}_predictions.tsv"
        scored = pd.read_csv(predictions, sep="\t").dropna(subset=["fold"])
        assert sorted(scored["id"]) == sorted(pairs["id"]), row  # every row answers the same pairs
    measures = pd.read_csv(root / "results" / "baseline" / "study_measures.tsv", sep="\t")
    assert len(measures) == len(pd.read_csv(root / "results" / "index" / "studies.tsv", sep="\t"))

    # a rule setting reruns the rows, not the measurements; a measurement setting reruns both
    edited = write_config(root, tiny_config(baseline={"expert": {"re_resection": "reset"}}), "edited.yaml")
    jobs = rules_of(plan(root, edited, *targets))
    assert {"rano_baseline", "volumes_gbm"} <= jobs and "study_measures" not in jobs
    coarser = write_config(root, tiny_config(baseline={"lesion_grid_mm": 12.0}), "coarser.yaml")
    assert "study_measures" in rules_of(plan(root, coarser, *targets))


def test_image_derived_rule_row_on_the_tiny_demo(tmp_path):
    """rano_expert_images reads the preprocessed images, not the generator's segmentations, answers the same
    pairs as every row with a threshold fitted per fold, and is a row of summary.tsv."""
    root = snapshot(tmp_path)
    configfile = write_config(root, tiny_config(baseline={"image_rule": {"enabled": True, "thresholds": [1.0, 2.0]}}))
    check(snakemake(root, configfile, "--cores", "2", "results/metrics/rano_expert_images.json",
                    "results/plots/rano_expert_images/rano_expert_images.png", timeout_s=600))

    doc = json.loads((root / "results" / "metrics" / "rano_expert_images.json").read_text())
    assert (doc["reads"], doc["learns"], doc["oracle"]) == ("image-derived segmentation", True, "")
    folds = json.loads((root / "results" / "splits" / "folds.json").read_text())
    assert [fit["fold"] for fit in doc["fitted_thresholds"]] == [entry["fold"] for entry in folds["folds"]]
    assert all(fit["threshold"] in (1.0, 2.0) for fit in doc["fitted_thresholds"])
    predictions = pd.read_csv(root / "results" / "baseline" / "rano_expert_images_predictions.tsv", sep="\t")
    pairs = pd.read_csv(root / "results" / "index" / "pairs.tsv", sep="\t")
    assert sorted(predictions.dropna(subset=["fold"])["id"]) == sorted(pairs["id"])
    fitted = {fit["fold"]: fit["threshold"] for fit in doc["fitted_thresholds"]}
    rated = predictions.dropna(subset=["threshold"])
    assert (rated["threshold"] == rated["fold"].map(fitted)).all()  # each test pair at its fold's threshold
    measures = pd.read_csv(root / "results" / "baseline" / "image_measures.tsv", sep="\t")
    assert measures["segmentation"].str.startswith("image-derived:results/preprocessed/").all()
    assert sorted(set(measures["threshold"])) == [1.0, 2.0]

    summary_inputs = check(snakemake(root, configfile, "--dry-run", "--cores", "1", "--forcerun", "summary",
                                     "results/metrics/summary.tsv"))
    assert "results/metrics/rano_expert_images.json" in summary_inputs.stdout + summary_inputs.stderr
    # a rule setting reruns the row, not the image measurements; a segmentation setting reruns both
    edited = write_config(root, tiny_config(baseline={"image_rule": {"enabled": True, "thresholds": [1.0, 2.0]},
                                                      "expert": {"re_resection": "reset"}}), "edited.yaml")
    jobs = rules_of(plan(root, edited, "results/metrics/rano_expert_images.json"))
    assert "rano_expert_images" in jobs and "image_measures" not in jobs
    flair = write_config(root, tiny_config(baseline={"image_rule": {"enabled": True, "thresholds": [1.0, 2.0],
                                                                    "flair_threshold": 1.0}}), "flair.yaml")
    assert "image_measures" in rules_of(plan(root, flair, "results/metrics/rano_expert_images.json"))
