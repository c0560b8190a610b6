"""A real Snakemake run of the preprocess stage on two studies of a tiny generated demo tree."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]

CONFIG = {
    "dataset": {
        "source": "synthetic",
        "root": "results/demo/LUMIERE",
        "synthetic": {"n_patients": 2, "studies_per_patient": [3, 3], "seed": 11, "skull": True, "quirks": False},
    },
    "preprocessing": {
        # A skull_strip job per study (not the default): its native-space mask is compared with the truth below;
        # the default in-process strip is checked against it in test_preprocess_units.py.
        "skull_strip": {"method": "atlas", "resolution_mm": 4.0, "separate_job": True},
        "template": {"head": "results/demo/template/head.nii.gz", "brain_mask": "results/demo/template/brain_mask.nii.gz"},
        "registration_mm": 4.0,
        "spacing_mm": 5.0,
        "threads": 1,
        "mem_mb": 1000,
    },
}


def snakemake(workdir: Path, *targets: str) -> None:
    command = [
        sys.executable, "-m", "snakemake", *targets, "--snakefile", str(REPO / "Snakefile"),
        "--directory", str(workdir), "--configfile", str(workdir / "config.yaml"), "--cores", "2",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * ((a > 0) & (b > 0)).sum() / ((a > 0).sum() + (b > 0).sum()))


@pytest.mark.slow
def test_snakemake_preprocesses_two_demo_studies(tmp_path):
    nib = pytest.importorskip("nibabel")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    snakemake(tmp_path, "results/index/pairs.tsv")
    pair = pd.read_csv(tmp_path / "results/index/pairs.tsv", sep="\t", dtype=str).iloc[0]
    studies = [(pair["patient"], pair["current"]), (pair["patient"], pair["previous"])]
    dirs = [f"results/preprocessed/{patient}/{study}" for patient, study in studies]
    snakemake(tmp_path, *dirs)

    grids = []
    for (patient, study), study_dir in zip(studies, dirs):
        out = tmp_path / study_dir
        status = json.loads((out / "status.json").read_text())
        assert status["status"] == "ok", status
        assert status["dice"] >= 0.9
        for name in [*status["modalities"], "brain_mask"]:
            image = nib.load(out / f"{name}.nii.gz")
            grids.append((image.shape, tuple(np.round(image.affine, 4).ravel())))
        assert (out / "qc.png").is_file() and (out / "transforms" / "transforms.json").is_file()
        # The atlas skull strip (CT1 anchor, native space) against the generator's truth.
        strip = json.loads((tmp_path / f"results/skullstrip/{patient}/{study}/skull_strip.json").read_text())
        truth_path = tmp_path / f"results/demo/truth/{patient}/{study}/brain_mask.nii.gz"
        if strip["anchor"] == "CT1" and truth_path.is_file():
            mask = nib.load(tmp_path / f"results/skullstrip/{patient}/{study}/brain_mask.nii.gz").get_fdata()
            assert dice(mask, nib.load(truth_path).get_fdata()) >= 0.9
    assert len(set(grids)) == 1  # every modality of both studies on one grid
    # The two studies (different head poses) overlap after registration.
    masks = [nib.load(tmp_path / d / "brain_mask.nii.gz").get_fdata() for d in dirs]
    assert dice(*masks) >= 0.9


def _outputs(root: Path) -> dict[str, object]:
    """Every file of a preprocessed tree: voxel data and affine of images, status.json without its
    timings, the bytes of anything else (transforms, QC figures)."""
    nib = pytest.importorskip("nibabel")
    found: dict[str, object] = {}
    # Snakemake's .snakemake_timestamp marks each directory output: a study's, or a batch's patient folder
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.name != ".snakemake_timestamp"):
        name = str(path.relative_to(root))
        if path.name.endswith(".nii.gz"):
            image = nib.load(path)
            found[name] = (image.get_fdata().tobytes(), np.round(image.affine, 6).tobytes())
        elif path.name == "status.json":
            found[name] = {k: v for k, v in json.loads(path.read_text()).items() if k not in ("seconds", "steps")}
        else:
            found[name] = path.read_bytes()
    return found


@pytest.mark.slow
def test_patient_batches_write_what_study_jobs_write(tmp_path):
    """preprocessing.batch: patient (one register_patient job per patient) gives the files, manifest and
    QC table of one register job per study, with a longitudinal reference inside the batch."""
    config = {
        "dataset": CONFIG["dataset"],
        "preprocessing": {
            "skull_strip": {"method": "atlas", "resolution_mm": 5.0},
            "template": CONFIG["preprocessing"]["template"],
            "registration_mm": 5.0, "spacing_mm": 5.0, "threads": 1, "mem_mb": 1000, "longitudinal": True,
        },
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    manifest = "results/preprocessed/manifest.tsv"
    snakemake(tmp_path, manifest, "--config", "preprocessing={batch: study}")
    by_study = _outputs(tmp_path / "results/preprocessed")
    tables = [pd.read_csv(tmp_path / t, sep="\t") for t in (manifest, "results/qc/registration.tsv")]
    for folder in (tmp_path / "results/preprocessed").glob("Patient-*"):
        shutil.rmtree(folder)

    snakemake(tmp_path, manifest, "--config", "preprocessing={batch: patient}")
    patients = sorted(p.name for p in (tmp_path / "results/preprocessed").glob("Patient-*"))
    assert sorted(p.stem for p in (tmp_path / "results/benchmarks/register_patient").glob("*.tsv")) == patients
    assert _outputs(tmp_path / "results/preprocessed") == by_study
    references = [json.loads(p.read_text())["reference"] for p in (tmp_path / "results/preprocessed").glob("*/*/status.json")]
    assert any(references)  # the follow-ups were registered to their patient's first study
    for table, before in zip((manifest, "results/qc/registration.tsv"), tables):
        after = pd.read_csv(tmp_path / table, sep="\t")
        timing = [c for c in after.columns if "seconds" in c]
        pd.testing.assert_frame_equal(after.drop(columns=timing), before.drop(columns=timing))
