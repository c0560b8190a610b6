"""The shrunk demo, end to end through training, to the explanation PNGs and summary.tsv."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from demo_run import check, snakemake, write_config


def job_stats(run) -> set[str]:
    """The rules in a Snakemake run's "Job stats" table."""
    stats = (run.stdout + run.stderr).split("Job stats:")[1].split("\n\n")[0]
    return {line.split()[0] for line in stats.splitlines()[3:] if line.strip()} - {"total"}


@pytest.mark.slow
def test_demo_produces_explanations_of_the_best_experiment(tiny_demo, tmp_path: Path) -> None:
    """The tiny demo's trained models (tests/conftest.py, copied as `cp -a` would), explained as the demo
    explains: the best experiment, saliency and Grad-CAM; nothing upstream of the explanations reruns."""
    source, tiny = tiny_demo
    shutil.copytree(source, tmp_path, symlinks=True, dirs_exist_ok=True)
    config = copy.deepcopy(tiny)
    config["explain"].update(best=True, experiments=[], methods=["saliency", "gradcam"], figure={"dpi": 60})
    configfile = write_config(tmp_path, config, "explain_best.yaml")
    run = check(snakemake(tmp_path, configfile, "--cores", "2", "results/explain/summary.tsv", timeout_s=600))
    assert job_stats(run) <= {"explain_selection", "explain", "explain_summary"}, job_stats(run)

    best = pd.read_csv(tmp_path / "results/explain/selection.tsv", sep="\t")["experiment"].tolist()
    assert len(best) == 1 and best[0] in config["experiments"]
    summary = pd.read_csv(tmp_path / "results/explain/summary.tsv", sep="\t")
    pairs = summary[summary["level"] == "pair"]
    assert not pairs.empty and set(pairs["experiment"]) == set(best)
    assert pairs["tumour_share"].dropna().between(0, 1).all()
    for row in pairs.itertuples():
        directory = tmp_path / f"results/explain/{row.experiment}/fold_{row.fold}"
        assert (directory / row.figure).is_file()
        study = tmp_path / "results/preprocessed" / row.patient / row.pair.split("_")[1]
        reference = nib.load(next(study.glob("*.nii.gz")))
        image = nib.load(directory / row.map)
        assert image.shape[:3] == reference.shape[:3] and np.allclose(image.affine, reference.affine)

    # New explanation settings: only the explain rules are planned again, never training.
    config["explain"]["figure"]["dpi"] = 70
    config["explain"]["methods"] = ["saliency"]
    dry = check(snakemake(tmp_path, write_config(tmp_path, config, "explain_best.yaml"), "-n",
                          "results/explain/summary.tsv"))
    assert job_stats(dry) == {"explain", "explain_summary"}
