"""Baseline-stage benchmark: every row of the baseline stage on a LUMIERE-sized tree, through the rules' own
code paths (study_measures, rano_baseline's three rows, volumes_gbm) with config/lumiere.yaml's `baseline`
settings. Prints wall seconds per step and in all, for a cold cache and again for a warm one (a rerun).

The tree: `--patients` patients of `--studies` studies each (default 100 x 6 = 600), each study a
DeepBraTumIA-like 1 mm atlas segmentation of 182x218x182 voxels in LUMIERE's numbering (1 necrosis,
2 enhancing, 3 edema) with its measured_volumes_in_mm3.json: a course of an enhancing rim around necrosis,
edema around it and now and then a distant new lesion, ratings drawn from the course. Writing the tree is
not timed.

  python tests/benchmarks/baseline_stage.py                      # 600 studies, 2 workers
  python tests/benchmarks/baseline_stage.py --patients 10 --workers 1 --keep /tmp/tree
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Callable

os.environ.setdefault("OMP_NUM_THREADS", "1")

import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "workflow"))

from ranoflow.baseline.criteria import RuleSettings  # noqa: E402
from ranoflow.baseline.expert_rule import ExpertSettings  # noqa: E402
from ranoflow.baseline.scoring import RULES, predict_expert, predict_pairs  # noqa: E402
from ranoflow.baseline.study_measures import LesionPoints, MeasureSettings, measure_studies  # noqa: E402
from ranoflow.baseline.volumes_gbm import GbmSettings, pair_features, predict_folds  # noqa: E402

SHAPE = (182, 218, 182)
AFFINE = np.diag([-1.0, -1.0, 1.0, 1.0])
CENTRE = np.array([91, 109, 91])


def ball(labels: np.ndarray, centre: np.ndarray, radius: float, label: int) -> None:
    lo = np.maximum(centre - int(radius) - 1, 0)
    hi = np.minimum(centre + int(radius) + 2, SHAPE)
    grid = np.ogrid[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
    inside = sum((g - c) ** 2 for g, c in zip(grid, centre)) <= radius**2
    labels[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]][inside] = label


def write_study(task: tuple[Path, float, bool, int]) -> None:
    folder, radius, new_lesion, seed = task
    rng = np.random.default_rng(seed)
    labels = np.zeros(SHAPE, dtype=np.uint8)
    centre = CENTRE + rng.integers(-3, 4, 3)
    ball(labels, centre, radius * 1.8 + 6, 3)
    if radius > 0:
        ball(labels, centre, radius, 2)
        ball(labels, centre, radius * 0.6, 1)
    if new_lesion:
        ball(labels, centre + np.array([0, 45, 10]), 5, 2)
    folder.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(labels, AFFINE), folder / "seg_mask.nii.gz")
    counts = np.bincount(labels.ravel(), minlength=4).astype(float)
    volumes = {"Necrotic_NonEnhancing": counts[1], "Enhancing_Core": counts[2], "Edema_Compartment": counts[3]}
    (folder / "measured_volumes_in_mm3.json").write_text(json.dumps(volumes))


def synthetic_courses(rng: np.random.Generator, patients: int, studies: int, radius_mm: tuple[float, float]):
    """(patient, patient index, study index, the patient's study names, tumour radius, rating) of every study
    of a synthetic cohort: each follow-up's tumour shrinks, holds or grows, ratings in LUMIERE-like shares."""
    for p in range(patients):
        patient = f"Patient-{p:03d}"
        radius = rng.uniform(*radius_mm)
        names = [f"week-{10 * k:03d}" for k in range(studies)]
        for k in range(studies):
            if k:
                radius = max(0.0, radius * rng.choice([0.6, 1.0, 1.3], p=[0.2, 0.4, 0.4]))
            rating = "Post-Op" if k == 0 else str(rng.choice(["CR", "PR", "SD", "PD"], p=[0.05, 0.1, 0.2, 0.65]))
            yield patient, p, k, names, radius, rating


def make_tree(root: Path, patients: int, studies: int, workers: int) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """studies.tsv, pairs.tsv and folds.json of a synthetic cohort, its segmentations written under root."""
    rng = np.random.default_rng(0)
    study_rows, pair_rows, tasks = [], [], []
    for patient, p, k, names, radius, rating in synthetic_courses(rng, patients, studies, (4, 14)):
        name = names[k]
        new_lesion = bool(k and rng.random() < 0.1)
        folder = root / patient / name
        tasks.append((folder, radius, new_lesion, p * 100 + k))
        study_rows.append({"patient": patient, "study": name, "order": k, "rating": rating,
                           "seg_deepbratumia": str(folder / "seg_mask.nii.gz"), "seg_hdglio": ""})
        if k:
            pair_rows.append({"id": f"{patient}_{name}_vs_{names[k - 1]}", "patient": patient, "current": name,
                              "previous": names[k - 1], "label": rating, "weeks_between": 10,
                              "less_than_3_months": int(k == 1), "reference": names[k - 1],
                              "baseline": names[0], "nadir": names[0]})
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(write_study, tasks, chunksize=8))
    pairs = pd.DataFrame(pair_rows)
    patient_ids = sorted(pairs["patient"].unique())
    folds = []
    for fold in range(5):
        test_patients = set(patient_ids[fold::5])
        val_patients = set(patient_ids[(fold + 1) % 5::5])
        test = pairs.loc[pairs["patient"].isin(test_patients), "id"].tolist()
        val = pairs.loc[pairs["patient"].isin(val_patients), "id"].tolist()
        train = pairs.loc[~pairs["patient"].isin(test_patients | val_patients), "id"].tolist()
        folds.append({"fold": fold, "train": train, "val": val, "test": test})
    return pd.DataFrame(study_rows), pairs, {"protocol": "patient", "folds": folds}


def baseline_section() -> dict:
    return yaml.safe_load((REPO / "config" / "lumiere.yaml").read_text())["baseline"]


def run_stage(studies, pairs, folds, section, cache: Path, workers: int) -> dict[str, float]:
    seconds = {}
    start = time.perf_counter()
    measures, arrays = measure_studies(studies, "seg_deepbratumia", MeasureSettings.from_config(section), cache, workers)
    seconds["study_measures"] = time.perf_counter() - start
    lesions = LesionPoints(arrays)
    start = time.perf_counter()
    rules = RuleSettings.from_config(section)
    for reference in RULES.values():
        predict_pairs(pairs, measures, lesions, rules, reference)
    expert = ExpertSettings.from_config(section.get("expert", {}))
    predict_expert(pairs, studies, measures, lesions, expert)
    seconds["rule_rows"] = time.perf_counter() - start
    start = time.perf_counter()
    gbm = GbmSettings.from_config(section.get("volumes_gbm", {}))
    features = pair_features(pairs, studies, measures, lesions, expert, gbm)
    predict_folds(pairs, features, folds, gbm, workers=workers)
    seconds["volumes_gbm"] = time.perf_counter() - start
    seconds["total"] = sum(seconds.values())
    return seconds


def cohort_arguments(description: str) -> argparse.ArgumentParser:
    """The benchmark's command line: the cohort's size and the worker count."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, default=100)
    parser.add_argument("--studies", type=int, default=6)
    parser.add_argument("--workers", type=int, default=2)
    return parser


def print_cold_and_warm(name: str, run_once: Callable[[], dict[str, float]], workers: int, studies: int) -> None:
    """Time the stage twice, cold cache then warm (a rerun), and print wall seconds per step and in all."""
    for run in ("cold cache", "warm cache (rerun)"):
        seconds = run_once()
        first = next(iter(seconds))
        steps = ", ".join(f"{step} {value:.1f} s" for step, value in seconds.items() if step != "total")
        print(f"{name}, {run}, {workers} workers: {seconds['total']:.1f} s wall ({steps}); "
              f"{first} {seconds[first] / studies:.3f} s per study")


def main() -> None:
    parser = cohort_arguments(__doc__)
    parser.add_argument("--keep", type=Path, help="write the tree here and keep it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = args.keep or Path(scratch)
        start = time.perf_counter()
        studies, pairs, folds = make_tree(root / "tree", args.patients, args.studies, args.workers)
        print(f"tree: {len(studies)} studies of {'x'.join(map(str, SHAPE))} voxels, {len(pairs)} pairs "
              f"(written in {time.perf_counter() - start:.1f} s, not counted)")
        section = baseline_section()
        print_cold_and_warm("baseline stage", lambda: run_stage(studies, pairs, folds, section, root / "cache",
                                                                args.workers), args.workers, len(studies))

if __name__ == "__main__":
    main()
