"""Snakemake runs of the explain rules on a fabricated trained model (upstream outputs written by the test)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import torch
import yaml

REPO = Path(__file__).resolve().parents[2]
SHAPE = (20, 20, 20)
AFFINE = np.array([[-2.0, 0, 0, 20], [0, 2.0, 0, -20], [0, 0, 2.0, -20], [0, 0, 0, 1]])
LABELS = ["CR", "PR", "SD", "PD", "PD", "SD"]
MODEL_KWARGS = {"init_features": 4, "growth_rate": 4, "block_config": [1, 1, 1]}


def write_study(directory: Path, tumour_radius: int, rng: np.random.Generator) -> None:
    directory.mkdir(parents=True)
    grid = np.indices(SHAPE)
    brain = (((grid - 10) ** 2).sum(axis=0) <= 8**2).astype(np.uint8)
    tumour = (((grid - np.array([12, 9, 10])[:, None, None, None]) ** 2).sum(axis=0) <= tumour_radius**2)
    seg = np.where(tumour, 3, 0).astype(np.uint8)
    seg[tumour & ((((grid - np.array([12, 9, 10])[:, None, None, None]) ** 2).sum(axis=0)) <= 1)] = 1
    for modality in ("T1", "FLAIR"):
        image = (brain * (0.5 + 0.1 * rng.standard_normal(SHAPE)) + 1.5 * tumour).astype(np.float32)
        nib.Nifti1Image(image, AFFINE).to_filename(directory / f"{modality}.nii.gz")
    nib.Nifti1Image(brain, AFFINE).to_filename(directory / "brain_mask.nii.gz")
    nib.Nifti1Image(seg, AFFINE).to_filename(directory / "tumour_seg.nii.gz")
    (directory / "status.json").write_text(json.dumps({"status": "ok", "reason": "", "anchor": "T1"}))


def fabricate(root: Path, k: int = 2) -> dict:
    """Upstream outputs (preprocessed studies, pairs, manifest, summary, trained models) and a config."""
    from ranoflow.explain.attribution import predict_proba
    from ranoflow.explain.pair_maps import pair_input
    from ranoflow.train.models import load_trained_model
    from ranoflow.train.experiments import resolve_experiment
    from ranoflow.train.models import build_model
    from ranoflow.train.pair_items import pair_items

    rng = np.random.default_rng(0)
    results = root / "results"
    pairs, manifest = [], []
    for i, label in enumerate(LABELS):
        patient = f"Patient-{i + 1:03d}"
        for study, radius in (("week-010", 2 + i % 3), ("week-002", 3)):
            directory = results / "preprocessed" / patient / study
            write_study(directory, radius, rng)
            manifest.append({"patient": patient, "study": study, "status": "ok", "reason": "",
                             "dir": str(directory.relative_to(root)), "modalities": "T1,FLAIR"})
        pairs.append({"id": f"{patient}_week-010_vs_week-002", "patient": patient, "current": "week-010",
                      "previous": "week-002", "label": label, "weeks_between": "8", "modalities": "T1,FLAIR",
                      "age": "", "sex": "", "idh": "", "mgmt": ""})
    pairs_df, manifest_df = pd.DataFrame(pairs), pd.DataFrame(manifest)
    (results / "index").mkdir(parents=True)
    pairs_df.to_csv(results / "index" / "pairs.tsv", sep="\t", index=False)
    manifest_df.to_csv(results / "preprocessed" / "manifest.tsv", sep="\t", index=False)

    experiment = {"modalities": ["T1", "FLAIR"], "input": "stack", "architecture": "densenet121"}
    training = {"image_size": [16, 16, 16], "fit": "resize", "model_kwargs": MODEL_KWARGS}
    config = {
        "dataset": {"source": "synthetic", "root": "results/demo/LUMIERE"},
        "folds": {"k": k},
        "training": training,
        "experiments": {"weak": dict(experiment), "strong": dict(experiment)},
        "explain": {"best": True, "methods": ["saliency", "gradcam"], "n_per_class": 1,
                    "targets": ["predicted", "label"], "figure": {"dpi": 60}},
    }
    from ranoflow.train.experiments import validated_section

    resolved = resolve_experiment("strong", config["experiments"], validated_section("training", training))
    (results / "metrics").mkdir(parents=True)
    pd.DataFrame(
        {"experiment": ["weak", "strong", "majority_class"], "ablation": ["", "", ""],
         "protocol": ["patient"] * 3, "median_balanced_accuracy": [0.5, 0.75, 0.25]}
    ).to_csv(results / "metrics" / "summary.tsv", sep="\t", index=False)

    # the tensor store the train jobs read (rules tensor_grid and study_tensors), on the studies' own grid
    from ranoflow.train.tensor_store import build_store, grid_geometry

    atlas_mask = results / "preprocessed" / "atlas" / "brain_mask.nii.gz"
    atlas_mask.parent.mkdir(parents=True)
    first = results / "preprocessed" / "Patient-001" / "week-010" / "brain_mask.nii.gz"
    atlas_mask.write_bytes(first.read_bytes())
    geometry = grid_geometry(atlas_mask, training["image_size"], training["fit"], 0)
    store = build_store(manifest_df.assign(dir=[str(root / d) for d in manifest_df["dir"]]), geometry,
                        results / "tensors")
    ids = list(pairs_df["id"])
    for fold in range(k):
        out = results / "models" / "strong" / f"fold_{fold}"
        out.mkdir(parents=True)
        torch.manual_seed(fold)
        model = build_model("densenet121", 4, 4, [16, 16, 16], 0, 16, MODEL_KWARGS)
        torch.save(model.state_dict(), out / "model.pt")
        (out / "metadata.json").write_text(json.dumps({"experiment": resolved, "fold": fold}))
        model = load_trained_model(resolved, out / "model.pt")
        test = ids[fold::k]
        items, _ = pair_items(pairs_df, manifest_df.assign(dir=[str(root / d) for d in manifest_df["dir"]]),
                              test, ["T1", "FLAIR"], [])
        rows = []
        for item in items:
            probs = predict_proba(model, pair_input(item, resolved, store, geometry).image)
            rows.append({"id": item["id"], "patient": item["patient"], "label": LABELS[ids.index(item["id"])],
                         "predicted": "CR PR SD PD".split()[int(np.argmax(probs))],
                         **{f"prob_{c}": p for c, p in zip(["CR", "PR", "SD", "PD"], probs)}})
        pd.DataFrame(rows).to_csv(out / "predictions.tsv", sep="\t", index=False)
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return config


def snakemake(root: Path, *args: str) -> subprocess.CompletedProcess:
    """Snakemake on a Snakefile of the shared helpers and the explain rules only, so that the fabricated
    upstream files count as given (the real Snakefile would want to rebuild them from the dataset)."""
    snakefile = root / "Snakefile.explain"
    snakefile.write_text(
        f'include: "{REPO}/workflow/rules/common.smk"\ninclude: "{REPO}/workflow/rules/explain.smk"\n'
    )
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(snakefile), "--directory", str(root),
               "--configfile", str(root / "config.yaml"), "--cores", "2", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_explain_rules_on_a_fabricated_model(tmp_path: Path) -> None:
    config = fabricate(tmp_path)
    run = snakemake(tmp_path, "results/explain/summary.tsv")
    assert run.returncode == 0, run.stderr[-4000:]

    selection = pd.read_csv(tmp_path / "results/explain/selection.tsv", sep="\t")
    assert selection["experiment"].tolist() == ["strong"]
    summary = pd.read_csv(tmp_path / "results/explain/summary.tsv", sep="\t")
    pairs = summary[summary["level"] == "pair"]
    assert set(pairs["fold"].astype(str)) == {"0", "1"} and set(pairs["method"]) == {"saliency", "gradcam"}
    scored = pairs.dropna(subset=["tumour_share"])  # an all-zero map (Grad-CAM's ReLU) has no shares
    assert set(pairs.loc[pairs["tumour_share"].isna(), "method"]) <= {"gradcam"}
    assert scored["tumour_share"].between(0, 1).all() and scored["brain_share"].gt(0.3).all()
    aggregates = summary[summary["level"] == "aggregate"]
    assert {("saliency", "all"), ("gradcam", "all")} <= set(zip(aggregates["method"], aggregates["label"]))
    for row in pairs.itertuples():
        directory = tmp_path / f"results/explain/strong/fold_{row.fold}"
        image = nib.load(directory / row.map)
        assert np.allclose(image.affine, AFFINE) and image.shape[:3] == SHAPE
        assert (directory / row.figure).stat().st_size > 5_000

    # A changed explanation setting reruns the explain jobs (params), and nothing else is considered.
    idle = snakemake(tmp_path, "-n", "results/explain/summary.tsv")
    assert "Nothing to be done" in idle.stdout + idle.stderr
    config["explain"]["figure"]["dpi"] = 70
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    dry = snakemake(tmp_path, "-n", "results/explain/summary.tsv")
    assert dry.returncode == 0, dry.stderr[-3000:]
    stats = (dry.stdout + dry.stderr).split("Job stats:")[1].split("\n\n")[0]
    planned = {line.split()[0] for line in stats.splitlines()[3:] if line.strip()} - {"total"}
    assert planned == {"explain", "explain_summary"}
