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
