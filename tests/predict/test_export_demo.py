"""On the shared tiny demo run: the exported model of an experiment, loaded in a fresh process without
ranoflow, gives the probabilities the workflow wrote for a test pair (to 1e-4)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from test_export import run_export_check

pytestmark = pytest.mark.slow


def test_the_exported_demo_model_reproduces_the_workflows_probabilities(tiny_demo, tmp_path: Path,
                                                                        monkeypatch) -> None:
    from ranoflow.explain.pair_maps import pair_input
    from ranoflow.tables import read_tsv
    from ranoflow.train.pair_items import pair_items

    workdir, config = tiny_demo
    monkeypatch.chdir(workdir)  # the manifest's study folders are relative to the run's root
    experiment = "exp_a"
    export = workdir / "results" / "export" / experiment
    card = json.loads((export / "model.json").read_text())
    assert card["folds"] == [0, 1]
    resolved = card["experiment_settings"]
    for fold in card["folds"]:
        predictions = pd.read_csv(workdir / f"results/models/{experiment}/fold_{fold}/predictions.tsv", sep="\t")
        items, _ = pair_items(read_tsv("results/index/pairs.tsv"), read_tsv("results/preprocessed/manifest.tsv"),
                              list(predictions["id"][:1]), resolved["modalities"], resolved["clinical"],
                              resolved["training"]["use_flagged"], resolved["references"])
        pair = pair_input(items[0], resolved, "results/tensors", card["grid"])
        extra = pair.extra[0].numpy() if pair.extra else np.zeros((1, 0), np.float32)
        out = run_export_check(export / "model.pt2", pair.image.numpy(), extra, tmp_path)
        written = predictions.set_index("id").loc[items[0]["id"], [f"prob_{c}" for c in card["classes"]]]
        assert np.allclose(out["per_fold"][fold][0], written.to_numpy(float), atol=1e-4)


def test_a_new_patients_follow_ups_are_rated_by_the_fold_ensemble(tiny_demo) -> None:
    """The demo's new patient (outside the cohort and its index) rated with one command: rating,
    probabilities, each fold model's vote and a saliency figure per follow-up."""
    from demo_run import check, snakemake

    workdir, config = tiny_demo
    results = workdir / "results"
    sheet = pd.read_csv(results / "demo/new_patients/sheet.tsv", sep="\t")
    new = set(sheet["folder"].str.split("/").str[1])
    assert new.isdisjoint(pd.read_csv(results / "index/pairs.tsv", sep="\t")["patient"])
    predict = "predict={experiment: exp_a, sheets: {new: results/demo/new_patients/sheet.tsv}}"
    check(snakemake(workdir, workdir / "tiny.yaml", "--cores", "2", "results/predict/new/rating.tsv",
                    "--config", predict, timeout_s=400))

    ratings = pd.read_csv(results / "predict/new/rating.tsv", sep="\t")
    assert sorted(ratings["follow_up"]) == sorted(sheet["follow_up"].unique())
    rated = ratings[ratings["rating"] != "not rated"]
    assert len(rated) and rated["rating"].isin(["CR", "PR", "SD", "PD"]).all()
    assert np.allclose(rated[["prob_CR", "prob_PR", "prob_SD", "prob_PD"]].sum(1), 1.0, atol=1e-3)
    votes = pd.read_csv(results / "predict/new/votes.tsv", sep="\t")
    assert set(votes["fold"]) == {0, 1}
    mean = votes.groupby("follow_up")[["prob_CR", "prob_PR", "prob_SD", "prob_PD"]].mean()
    assert np.allclose(mean.loc[rated["follow_up"]].to_numpy(),
                       rated[["prob_CR", "prob_PR", "prob_SD", "prob_PD"]].to_numpy(), atol=1e-3)
    for follow_up, rating in zip(rated["follow_up"], rated["rating"]):
        assert (results / f"predict/new/saliency/{follow_up}_saliency_predicted-{rating}.png").is_file()


def test_a_sheet_without_a_study_the_experiment_reads_is_refused_before_any_job(tiny_demo, tmp_path: Path) -> None:
    from demo_run import snakemake

    workdir, _ = tiny_demo
    sheet = pd.read_csv(workdir / "results/demo/new_patients/sheet.tsv", sep="\t")
    sheet["folder"] = str(workdir / "results/demo/new_patients") + "/" + sheet["folder"]
    only_current = tmp_path / "current_only.tsv"
    sheet[sheet["role"] == "current"].to_csv(only_current, sep="\t", index=False)
    run = snakemake(workdir, workdir / "tiny.yaml", "-n", "--config",
                    f"predict={{experiment: exp_a, sheets: {{new: {only_current}}}}}")
    assert run.returncode != 0
    assert "gives no previous study" in run.stdout + run.stderr
    assert "Traceback" not in run.stdout + run.stderr
