"""Tiny preprocessed pair data for the training-stage tests (NIfTI study dirs, pairs.tsv, folds.json,
manifest.tsv), with labels that follow the change of a bright blob so that a network can learn them."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from ranoflow.train.tensor_store import build_store, grid_geometry
from ranoflow.vocabulary import CLASSES

RADIUS_CHANGE = {"CR": 0.0, "PR": 0.5, "SD": 1.0, "PD": 1.6}  # current radius / previous radius


def _volume(shape: tuple[int, int, int], centre: np.ndarray, radius: float, rng: np.random.Generator) -> tuple:
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), axis=-1).astype(float)
    mid = (np.asarray(shape) - 1) / 2
    brain = (((grid - mid) / (np.asarray(shape) * 0.42)) ** 2).sum(-1) <= 1
    blob = np.linalg.norm(grid - centre, axis=-1) <= radius if radius > 0 else np.zeros(shape, bool)
    return brain, blob & brain


def write_study(directory: Path, shape, centre, radius, rng, modalities=("CT1", "T1", "T2", "FLAIR")) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    brain, blob = _volume(shape, centre, radius, rng)
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    for k, modality in enumerate(modalities):
        image = np.where(brain, 1.0 + 0.1 * rng.standard_normal(shape), 0.0)
        image[blob] += 2.0 + 0.5 * k
        nib.save(nib.Nifti1Image(image.astype(np.float32), affine), directory / f"{modality}.nii.gz")
    nib.save(nib.Nifti1Image(brain.astype(np.uint8), affine), directory / "brain_mask.nii.gz")
    (directory / "status.json").write_text(json.dumps({"status": "ok", "reason": ""}))


def make_dataset(root: Path, n_patients: int = 12, pairs_per_patient: int = 2, shape=(20, 20, 20), k: int = 2,
                 seed: int = 0, drop_flair_patient: bool = False) -> dict[str, Path]:
    """Preprocessed study dirs + pairs.tsv + folds.json (patient-wise, inner val split) + manifest.tsv."""
    rng = np.random.default_rng(seed)
    pairs, manifest = [], []
    for p in range(n_patients):
        patient = f"Patient-{p + 1:03d}"
        centre = np.asarray(shape) / 2 + rng.uniform(-2, 2, 3)
        mods = ("CT1", "T1", "T2") if drop_flair_patient and p == 0 else ("CT1", "T1", "T2", "FLAIR")
        for s in range(pairs_per_patient):
            label = CLASSES[(p + s) % 4]
            previous, current = f"week-{20 * s:03d}", f"week-{20 * s + 10:03d}"
            radius = rng.uniform(3.0, 4.0)
            for study, r in ((previous, radius), (current, radius * RADIUS_CHANGE[label])):
                directory = root / "preprocessed" / patient / study
                write_study(directory, shape, centre, r, rng, mods)
                manifest.append({"patient": patient, "study": study, "status": "ok", "reason": "",
                                 "dir": str(directory), "modalities": ",".join(mods)})
            pairs.append({
                "id": f"{patient}_{current}_vs_{previous}", "patient": patient, "current": current,
                "previous": previous, "label": label, "weeks_between": 10, "modalities": ",".join(mods),
                "age": "" if p % 3 == 0 else str(50 + p), "sex": ["male", "female", ""][p % 3],
                "idh": ["wildtype", "", "mutant"][p % 3], "mgmt": ["methylated", "unmethylated", ""][p % 3],
            })
    pairs_df = pd.DataFrame(pairs)
    patients = sorted(pairs_df["patient"].unique())
    folds = []
    for f in range(k):
        test_p = patients[f::k]
        rest = [p for p in patients if p not in test_p]
        val_p = rest[:2]
        ids = lambda ps: pairs_df.loc[pairs_df["patient"].isin(ps), "id"].tolist()  # noqa: E731
        folds.append({"fold": f, "train": ids([p for p in rest if p not in val_p]), "val": ids(val_p),
                      "test": ids(test_p)})
    paths = {"pairs": root / "pairs.tsv", "folds": root / "folds.json", "manifest": root / "manifest.tsv"}
    pairs_df.to_csv(paths["pairs"], sep="\t", index=False)
    paths["folds"].write_text(json.dumps({"protocol": "patient", "leaky": False, "k": k, "seed": 0,
                                          "folds": folds}))
    pd.DataFrame(manifest).to_csv(paths["manifest"], sep="\t", index=False)
    atlas_mask(shape).to_filename(root / "atlas_brain_mask.nii.gz")
    paths["atlas_mask"] = root / "atlas_brain_mask.nii.gz"
    return paths


def atlas_mask(shape) -> nib.Nifti1Image:
    """The brain mask of the tiny studies' grid (every study's brain), as the atlas of their grid."""
    brain, _ = _volume(tuple(shape), np.zeros(3), 0.0, np.random.default_rng(0))
    return nib.Nifti1Image(brain.astype(np.uint8), np.diag([2.0, 2.0, 2.0, 1.0]))


def make_store(paths: dict[str, Path], image_size, fit: str = "resize", margin: int = 1) -> Path:
    """The tensor store of a make_dataset tree (what rules tensor_grid and study_tensors write)."""
    geometry = grid_geometry(paths["atlas_mask"], image_size, fit, margin)
    manifest = pd.read_csv(paths["manifest"], sep="\t", dtype=str, keep_default_na=False)
    return build_store(manifest, geometry, paths["manifest"].parent / "tensors")
