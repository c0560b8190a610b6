"""Image-derived rule row benchmark: image_measures (segment each preprocessed study at every candidate
threshold and measure it) and rano_expert_images (rate every pair per candidate, fit per fold), through the
rules' own code paths with config/config.yaml's `baseline` settings. Prints wall seconds per step, for a cold
cache and again for a warm one (a rerun).

The tree: `--patients` x `--studies` preprocessed studies (z-scored CT1, T1, FLAIR and a brain mask on an atlas
grid of `--grid-mm`: 5 mm is the demo's 29x35x31, 1 mm LUMIERE's 182x218x182): an enhancing ball whose radius
follows a course, FLAIR-bright edema around it, Gaussian noise; ratings drawn from the course. Writing the
tree is not timed.

  python tests/benchmarks/image_rule.py                                  # 600 studies on the demo grid
  python tests/benchmarks/image_rule.py --patients 2 --grid-mm 1         # 12 studies on the 1 mm grid
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "workflow"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from baseline_stage import cohort_arguments, print_cold_and_warm, synthetic_courses  # noqa: E402

from ranoflow.baseline.expert_rule import ExpertSettings  # noqa: E402
from ranoflow.baseline.image_rule import fit_folds, rate_candidates, rate_test_pairs  # noqa: E402
from ranoflow.baseline.image_segmentation import ImageSegmentationSettings, measure_manifest  # noqa: E402
from ranoflow.baseline.study_measures import MeasureSettings  # noqa: E402

ATLAS_MM = np.array([182, 218, 182])


def write_study(task: tuple[Path, float, float, int]) -> None:
    folder, radius_mm, grid_mm, seed = task
    rng = np.random.default_rng(seed)
    shape = tuple(int(n) for n in np.ceil(ATLAS_MM / grid_mm))
    axes = np.ogrid[tuple(slice(0, n) for n in shape)]
    centre = (np.array(shape) - 1) / 2
    distance = np.sqrt(sum(((a - c) * grid_mm) ** 2 for a, c in zip(axes, centre)))
    brain = np.sqrt(sum(((a - c) * grid_mm / (0.4 * s)) ** 2 for a, c, s in zip(axes, centre, ATLAS_MM))) <= 1
    t1 = rng.normal(0, 1, shape).astype(np.float32)
    ct1 = (t1 + rng.normal(0, 0.3, shape) + 3.0 * (distance <= radius_mm)).astype(np.float32)
    flair = (rng.normal(0, 1, shape) + 3.0 * (distance <= radius_mm * 1.8 + 6)).astype(np.float32)
    folder.mkdir(parents=True, exist_ok=True)
    affine = np.diag([grid_mm, grid_mm, grid_mm, 1.0])
    for name, data in (("CT1", ct1), ("T1", t1), ("FLAIR", flair), ("brain_mask", brain.astype(np.uint8))):
        nib.save(nib.Nifti1Image(data, affine), folder / f"{name}.nii.gz")


def make_tree(root: Path, patients: int, studies: int, grid_mm: float, workers: int):
    """manifest.tsv, studies.tsv, pairs.tsv and folds.json of a synthetic cohort, its images under root."""
    rng = np.random.default_rng(0)
    manifest, study_rows, pair_rows, tasks = [], [], [], []
    for patient, p, k, names, radius, rating in synthetic_courses(rng, patients, studies, (8, 20)):
        name = names[k]
        folder = root / patient / name
        tasks.append((folder, radius, grid_mm, p * 100 + k))
        manifest.append({"patient": patient, "study": name, "status": "ok", "reason": "", "dir": str(folder)})
        study_rows.append({"patient": patient, "study": name, "order": k, "rating": rating})
        if k:
            pair_rows.append({"id": f"{patient}_{name}", "patient": patient, "current": name,
                              "previous": names[k - 1], "label": rating, "less_than_3_months": int(k == 1),
                              "baseline": names[0], "nadir": names[0]})
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(write_study, tasks, chunksize=8))
    pairs = pd.DataFrame(pair_rows)
    patient_ids = sorted(pairs["patient"].unique())
    k = min(5, len(patient_ids))
    folds = []
    for fold in range(k):
        test = pairs.loc[pairs["patient"].isin(patient_ids[fold::k]), "id"].tolist()
        folds.append({"fold": fold, "train": sorted(set(pairs["id"]) - set(test)), "val": [], "test": test})
    return pd.DataFrame(manifest), pd.DataFrame(study_rows), pairs, {"folds": folds}


def run_rows(manifest, studies, pairs, folds, section, cache: Path, workers: int) -> dict[str, float]:
    seconds = {}
    images = ImageSegmentationSettings.from_config(section.get("image_rule", {}))
    start = time.perf_counter()
    measures, arrays = measure_manifest(manifest, images, MeasureSettings.from_config(
        {**section, "source": "deepbratumia", "volumes": "mask"}), cache, workers)
    seconds["image_measures"] = time.perf_counter() - start
    start = time.perf_counter()
    thresholds = list(images.thresholds)
    rated = rate_candidates(pairs, studies, measures, arrays, thresholds,
                            ExpertSettings.from_config(section.get("expert", {})))
    rate_test_pairs(rated, folds, fit_folds(rated, pairs, folds, thresholds, section.get("missing_prediction", "SD")))
    seconds["rano_expert_images"] = time.perf_counter() - start
    seconds["total"] = sum(seconds.values())
    return seconds


def main() -> None:
    parser = cohort_arguments(__doc__)
    parser.add_argument("--grid-mm", type=float, default=5.0)
    args = parser.parse_args()
    section = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["baseline"]
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        start = time.perf_counter()
        manifest, studies, pairs, folds = make_tree(root / "tree", args.patients, args.studies, args.grid_mm,
                                                    args.workers)
        print(f"tree: {len(manifest)} preprocessed studies on a {args.grid_mm:g} mm grid, {len(pairs)} pairs, "
              f"{len(section['image_rule']['thresholds'])} thresholds "
              f"(written in {time.perf_counter() - start:.1f} s, not counted)")
        print_cold_and_warm("image rule row", lambda: run_rows(manifest, studies, pairs, folds, section,
                                                               root / "cache", args.workers),
                            args.workers, len(manifest))

if __name__ == "__main__":
    main()
