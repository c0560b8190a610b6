"""A real Snakemake run of the preprocess stage on two studies of a tiny generated demo tree."""

from __future__ import annotations

import json
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
