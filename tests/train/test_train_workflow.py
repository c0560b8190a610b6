"""Training stage end to end on tiny volumes: Python API, resume after a kill, and the Snakemake rules."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import yaml
from train_helpers import make_dataset, make_store

from ranoflow.evaluate.experiment_metrics import aggregate_experiment
from ranoflow.evaluate.majority import majority_baseline, majority_predictions
from ranoflow.preprocess.qc import aggregate
from ranoflow.train import experiments
from ranoflow.train.fold import train_fold
from ranoflow.train.loop import CHECKPOINT
from ranoflow.train.pretext import pretrain_fold

REPO = Path(__file__).resolve().parents[2]
TINY = {
    "image_size": [16, 16, 16],
    "batch_size": 4,
    "max_epochs": 2,
    "lr": 1e-3,
    "model_kwargs": {"init_features": 8, "growth_rate": 4, "block_config": [1, 2, 2]},
    "bootstrap": 50,
}


def _read(paths):
    tsv = lambda p: pd.read_csv(p, sep="\t", dtype=str, keep_default_na=False)  # noqa: E731
    return tsv(paths["pairs"]), json.loads(paths["folds"].read_text()), tsv(paths["manifest"])


@pytest.mark.slow
def test_two_folds_through_the_python_api(tmp_path):
    paths = make_dataset(tmp_path / "data", n_patients=8, pairs_per_patient=2, k=2)
    pairs, folds, manifest = _read(paths)
    store = make_store(paths, TINY["image_size"])
    settings = {**TINY, "pretext_tasks": {
        "rot": {"method": "rotation", "architecture": "densenet121", "modalities": ["T1", "FLAIR"],
                "input": "subtract", "training": {"max_epochs": 1}}}}
    exp = experiments.resolve_experiment("clin", {"clin": {
        "modalities": ["T1", "FLAIR"], "input": "subtract", "architecture": "densenet121", "clinical": True,
        "pretraining": "rot"}}, settings)
    task = experiments.resolve_pretext_task("rot", settings)
    dirs = []
    for fold in (0, 1):
        weights = tmp_path / "pre" / f"fold_{fold}" / "backbone.pt"
        pretrain_fold(task, pairs, folds, manifest, fold, weights, weights.parent / "pretrain.json", store_dir=store)
        assert weights.is_file() and not (weights.parent / CHECKPOINT).exists()
        out = tmp_path / "models" / f"fold_{fold}"
        result = train_fold(exp, pairs, folds, manifest, fold, out, store_dir=store, pretrained=weights)
        dirs.append(out)
        predictions = pd.read_csv(out / "predictions.tsv", sep="\t")
        assert list(predictions.columns) == ["id", "patient", "label", "predicted", "prob_CR", "prob_PR", "prob_SD",
                                             "prob_PD"]
        assert sorted(predictions["id"]) == sorted(folds["folds"][fold]["test"])
        assert predictions.filter(like="prob_").sum(axis=1).round(4).eq(1).all()
        history = pd.read_csv(out / "history.tsv", sep="\t")
        assert len(history) == 2 and {"train_loss", "val_loss", "val_balanced_accuracy", "lr"} <= set(history)
        metadata = json.loads((out / "metadata.json").read_text())
        assert metadata["device"] == "cpu" and metadata["packages"]["monai"] and metadata["experiment"] == exp
        assert metadata["pretrained"] == str(weights) and metadata["seed"] == 0
        assert result["test"]["n"] == len(predictions) and (out / "model.pt").is_file()
    doc = aggregate_experiment(exp, dirs, bootstrap=50)
    assert doc["n_folds"] == 2 and len(doc["balanced_accuracy"]["per_fold"]) == 2
    assert doc["clinical"] == "age,sex,idh,mgmt,weeks_between,less_than_3_months" and doc["pretraining"] == "rot"


RUNNER = textwrap.dedent(
    """
    import json, logging, sys
    import pandas as pd
    from ranoflow.train import experiments
    from ranoflow.train.fold import train_fold
    logging.basicConfig(level=logging.INFO, stream=sys.stdout)
    data, out = sys.argv[1], sys.argv[2]
    tsv = lambda p: pd.read_csv(p, sep="\\t", dtype=str, keep_default_na=False)
    settings = json.loads(sys.argv[3])
    exp = experiments.resolve_experiment("e", {"e": {"modalities": ["T1", "T2"], "input": "stack",
                                                     "architecture": "densenet121"}}, settings)
    train_fold(exp, tsv(f"{data}/pairs.tsv"), json.loads(open(f"{data}/folds.json").read()),
                        tsv(f"{data}/manifest.tsv"), 0, out, store_dir=f"{data}/tensors", threads=1)
    """
)


def _start(tmp_path, out, settings):
    script = tmp_path / "runner.py"
    script.write_text(RUNNER)
    return subprocess.Popen([sys.executable, str(script), str(tmp_path / "data"), str(out), json.dumps(settings)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _kill_after_first_checkpoint(process: subprocess.Popen, out: Path, sent: int = signal.SIGKILL) -> None:
    deadline = time.time() + 300
    while not (out / CHECKPOINT).exists():
        assert process.poll() is None and time.time() < deadline, "training ended before its first checkpoint"
        time.sleep(0.01)
    os.kill(process.pid, sent)
    process.wait()


@pytest.mark.slow
def test_killed_training_starts_fresh_on_new_images(tmp_path):
    """A train job killed mid-run, then preprocessing rerun with other settings (new images at the same
    paths, a manifest with new checksums): the rerun does not resume a model trained on the old images."""
    paths = make_dataset(tmp_path / "data", n_patients=8, pairs_per_patient=2, k=2)
    make_store(paths, TINY["image_size"])
    settings = {**TINY, "max_epochs": 4, "early_stopping": {"patience": 0}}
    out = tmp_path / "model"
    process = _start(tmp_path, out, settings)
    _kill_after_first_checkpoint(process, out)

    study_dirs = sorted(str(p.parent) for p in (tmp_path / "data" / "preprocessed").rglob("status.json"))
    for directory in study_dirs:
        image = nib.load(Path(directory) / "T1.nii.gz")
        nib.save(nib.Nifti1Image(np.asarray(image.dataobj) * 2.0, image.affine), Path(directory) / "T1.nii.gz")
    aggregate(study_dirs, outlier_mad=0)[1].to_csv(paths["manifest"], sep="\t", index=False)
    make_store(paths, TINY["image_size"])  # what the study_tensors jobs of the new images write
    restarted = _start(tmp_path, out, settings)
    log, _ = restarted.communicate(timeout=300)
    assert restarted.returncode == 0, log
    assert "resumed from" not in log
    fresh = [line for line in log.splitlines() if "starting fresh" in line]
    assert len(fresh) == 1 and "preprocessed images" in fresh[0] and "settings" not in fresh[0], log
    assert "epoch 1/4" in log and json.loads((out / "metadata.json").read_text())["resumed"] is False


@pytest.mark.slow
@pytest.mark.parametrize("sent", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_killed_training_resumes_with_the_same_result(tmp_path, sent):
    store = make_store(make_dataset(tmp_path / "data", n_patients=8, pairs_per_patient=2, k=2), TINY["image_size"])
    settings = {**TINY, "max_epochs": 6, "early_stopping": {"patience": 0},
                "model_kwargs": {"init_features": 16, "growth_rate": 8, "block_config": [2, 2, 2]}}

    pairs, folds, manifest = _read({k: tmp_path / "data" / f for k, f in
                                    (("pairs", "pairs.tsv"), ("folds", "folds.json"), ("manifest", "manifest.tsv"))})
    exp = experiments.resolve_experiment("e", {"e": {"modalities": ["T1", "T2"], "input": "stack",
                                                     "architecture": "densenet121"}}, settings)
    reference = tmp_path / "uninterrupted"
    train_fold(exp, pairs, folds, manifest, 0, reference, store_dir=store, threads=1)

    resumed = tmp_path / "resumed"
    process = _start(tmp_path, resumed, settings)
    _kill_after_first_checkpoint(process, resumed, sent)
    assert process.returncode == -sent and not (resumed / "model.pt").exists()

    restarted = _start(tmp_path, resumed, settings)
    log, _ = restarted.communicate(timeout=300)
    assert restarted.returncode == 0, log
    assert "resumed from" in log
    assert not (resumed / CHECKPOINT).exists()
    first = pd.read_csv(reference / "predictions.tsv", sep="\t")
    second = pd.read_csv(resumed / "predictions.tsv", sep="\t")
    pd.testing.assert_frame_equal(first, second, check_exact=False, atol=1e-5)
    a, b = (json.loads((d / "metrics.json").read_text()) for d in (reference, resumed))
    assert a["test"] == b["test"] and a["best_epoch"] == b["best_epoch"] and b["epochs_run"] == 6
    h1, h2 = (pd.read_csv(d / "history.tsv", sep="\t") for d in (reference, resumed))
    pd.testing.assert_series_equal(h1["val_loss"], h2["val_loss"], atol=1e-5)
    assert json.loads((resumed / "metadata.json").read_text())["resumed"] is True


@pytest.mark.slow
def test_snakemake_train_rules_end_to_end(tmp_path):
    """pretrain -> train -> aggregate_experiment -> summary on prepared upstream files (2 folds, 1 epoch)."""
    # the preprocessed studies where the register jobs put them, with the atlas brain mask of their grid
    data = make_dataset(tmp_path / "results", n_patients=8, pairs_per_patient=2, k=2, shape=(32, 32, 32))
    for name, target in (("pairs", "results/index/pairs.tsv"), ("folds", "results/splits/folds.json"),
                         ("manifest", "results/preprocessed/manifest.tsv"),
                         ("atlas_mask", "results/preprocessed/atlas/brain_mask.nii.gz")):
        (tmp_path / target).parent.mkdir(parents=True, exist_ok=True)
        os.replace(data[name], tmp_path / target)
    pairs_tsv = pd.read_csv(tmp_path / "results/index/pairs.tsv", sep="\t", dtype=str, keep_default_na=False)
    pairs_tsv.assign(reference=pairs_tsv["previous"], baseline="", nadir="").to_csv(
        tmp_path / "results/index/pairs.tsv", sep="\t", index=False)  # every role column of the index stage
    pairs, folds, _ = _read({"pairs": tmp_path / "results/index/pairs.tsv",
                             "folds": tmp_path / "results/splits/folds.json",
                             "manifest": tmp_path / "results/preprocessed/manifest.tsv"})
    # The rule-based baseline's metrics and predictions join the summary; stand in for that stage with its
    # formats (it scores every pair but one, so the summary's common test pairs lack that one).
    (tmp_path / "results/metrics").mkdir(parents=True)
    (tmp_path / "results/baseline").mkdir(parents=True)
    baselines = ("rano_rules", "rano_rules_previous", "rano_expert", "volumes_gbm")
    for row in baselines:
        rules_doc = majority_baseline(pairs, folds, bootstrap=10) | {"experiment": row}
        (tmp_path / f"results/metrics/{row}.json").write_text(json.dumps(rules_doc))
        rules = pd.concat(majority_predictions(pairs, folds).values(), ignore_index=True)
        rules.loc[0, "predicted"] = ""
        rules.to_csv(tmp_path / f"results/baseline/{row}_predictions.tsv", sep="\t", index=False)
    config = {
        "dataset": {"source": "synthetic", "root": "results/demo/LUMIERE"},
        "folds": {"k": 2},
        "training": {**TINY, "max_epochs": 1, "image_size": [32, 32, 32], "pretext_tasks": {
            "rot": {"method": "rotation", "architecture": "densenet121", "modalities": ["T1"], "input": "stack",
                    "training": {"max_epochs": 1}}}},
        "experiments": {
            "pretrained_clinical": {"modalities": ["T1"], "input": "stack", "architecture": "densenet121",
                           "pretraining": "rot", "clinical": ["age", "weeks_between"], "ablation": "pretraining"},
        },
        "resources": {"train": {"gpu": 0, "threads": 1, "mem_mb": 2000, "runtime": 10},
                      "pretrain": {"gpu": 0, "threads": 1, "mem_mb": 2000, "runtime": 10}},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    # the finished `pairs` checkpoint (its inputs older than pairs.tsv), so the store's jobs are planned from it
    checkpoint_inputs = ["results/index/studies.tsv", "results/index/orphan_ratings.tsv",
                         "results/index/study_volumes.tsv",
                         "results/demo/LUMIERE/LUMIERE-Demographics_Pathology.csv",
                         "results/demo/LUMIERE/.ranoflow-synthetic"]
    manifest_rows = pd.read_csv(tmp_path / "results/preprocessed/manifest.tsv", sep="\t", dtype=str)
    studies_tsv = pd.DataFrame({
        "patient": manifest_rows["patient"], "study": manifest_rows["study"],
        "order": manifest_rows.groupby("patient").cumcount().astype(str), "dbt_skullstrip_dir": "", "seg_hdglio": "",
        **{f"has_{m}": "1" for m in ("CT1", "T1", "T2", "FLAIR")},
        **{f"path_{m}": manifest_rows["dir"] + f"/{m}.nii.gz" for m in ("CT1", "T1", "T2", "FLAIR")}})
    for name in checkpoint_inputs:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("placeholder\n")
        if name.endswith("studies.tsv"):
            studies_tsv.to_csv(tmp_path / name, sep="\t", index=False)
        os.utime(tmp_path / name, (time.time() - 3600,) * 2)
    os.utime(tmp_path / "results/demo/LUMIERE", (time.time() - 3600,) * 2)
    atlas = tmp_path / "results/preprocessed/atlas"
    for name in ("brain", "registration_brain"):  # the atlas grid the register jobs (not run here) read
        (atlas / f"{name}.nii.gz").write_bytes((atlas / "brain_mask.nii.gz").read_bytes())
    (tmp_path / "results/index/excluded.tsv").write_text("placeholder\n")  # the checkpoint's other output
    allowed = ["pairs", "tensor_grid", "study_tensors", "tensor_set", "pretrain", "train", "aggregate_experiment",
               "summary"]
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory",
               str(tmp_path), "--configfile", str(tmp_path / "config.yaml"), "--cores", "2",
               "--allowed-rules", *allowed, "--", "results/metrics/summary.tsv"]
    run = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-4000:]
    summary = pd.read_csv(tmp_path / "results/metrics/summary.tsv", sep="\t")
    assert set(summary["experiment"]) == {"pretrained_clinical", "majority_class", *baselines}
    assert summary["median_balanced_accuracy"].is_monotonic_decreasing
    assert summary["n_pairs"].tolist() == [len(pairs) - 1] * len(summary)  # every row on the same pairs
    assert summary.set_index("experiment").loc["majority_class", "own_n_pairs"] == len(pairs)
    assert (tmp_path / "results/pretrained/rot/fold_1/backbone.pt").is_file()
    assert (tmp_path / "results/plots/confusion_matrices.png").stat().st_size > 0
    assert (tmp_path / "results/benchmarks/train/pretrained_clinical/fold_0.tsv").is_file()
    assert "epoch 1/1" in (tmp_path / "results/logs/train/pretrained_clinical/fold_1.log").read_text()
    metadata = json.loads((tmp_path / "results/models/pretrained_clinical/fold_0/metadata.json").read_text())
    assert metadata["experiment"]["in_channels"] == 2 and metadata["pretrained"].endswith("rot/fold_0/backbone.pt")
    # one store per study, read by the pretrain and the train jobs alike
    studies = {(p, s) for p, s in zip(pairs["patient"], pairs["current"])} | set(zip(pairs["patient"], pairs["previous"]))
    stored = {(f.parent.name, f.stem) for f in (tmp_path / "results/tensors").glob("*/*.npy")
              if not f.stem.endswith("_mask")}
    assert stored == studies
    assert len(list((tmp_path / "results/logs/study_tensors").glob("*.log"))) == len(studies)
