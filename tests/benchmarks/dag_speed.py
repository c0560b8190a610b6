"""Benchmark: how long `snakemake -n` takes to plan config/lumiere.yaml on a LUMIERE-sized dataset.

A synthetic LUMIERE-shaped tree of 91 patients and 638 studies (the released sizes) is written with
header-only images (2x2x2 voxels: the index reads headers, the plan reads no voxel), the workflow's own
index, pairs and folds rules run on it once (not timed), then `snakemake -n` plans everything of the
paper's grid (config/lumiere.yaml experiments) x 5 folds. Prints the job count, wall and CPU seconds of
each dry run, and whether the plan imported torch, MONAI or ANTs (the Snakefile must not).

  python tests/benchmarks/dag_speed.py [--runs 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "workflow"))
sys.path.insert(0, str(REPO / "tests"))

from demo_run import snapshot  # noqa: E402

from ranoflow import lumiere  # noqa: E402
from ranoflow.vocabulary import MODALITIES  # noqa: E402

N_PATIENTS, N_STUDIES = 91, 638
FOLLOW_UP_RATINGS = ["PD"] * 5 + ["SD"] * 3 + ["PR"] + ["CR"]  # roughly LUMIERE's mix of follow-up ratings
HEAVY = ("torch", "monai", "ants")

# Run by the timed subprocess: snakemake's own main, then which heavy modules it imported.
PLAN = """
import sys
from snakemake.cli import main
try:
    main(sys.argv[2:])
except SystemExit as end:
    code = end.code
print("HEAVY_IMPORTS", sorted({m.split('.')[0] for m in sys.modules} & set(sys.argv[1].split(','))), file=sys.stderr)
sys.exit(code)
"""


def study_weeks(rng: random.Random) -> list[list[str]]:
    """Study folder names per patient: 638 studies over 91 patients, week-000 (pre-op) first."""
    counts = [N_STUDIES // N_PATIENTS] * N_PATIENTS
    for i in rng.sample(range(N_PATIENTS), N_STUDIES - sum(counts)):
        counts[i] += 1
    patients = []
    for count in counts:
        weeks = sorted(rng.sample(range(1, 300), count - 1))
        patients.append(["week-000", *(f"week-{w:03d}" for w in weeks)])
    return patients


def write_tree(root: Path, seed: int = 0) -> int:
    """The LUMIERE-shaped tree under root with header-only images; returns the number of studies."""
    rng = random.Random(seed)
    header_only = root / "header_only.nii.gz"
    root.mkdir(parents=True)
    nib.save(nib.Nifti1Image(np.ones((2, 2, 2), dtype=np.uint8), np.eye(4)), header_only)
    ratings, completeness, demographics, n = [], [], [], 0
    for number, weeks in enumerate(study_weeks(rng), start=1):
        patient = f"Patient-{number:03d}"
        for k, week in enumerate(weeks):
            folder = lumiere.study_dir(root, patient, week)
            folder.mkdir(parents=True)
            for modality in MODALITIES:
                (folder / f"{modality}.nii.gz").hardlink_to(header_only)
            # DeepBraTumIA's segmentation and measured volumes: the index finds each pair's nadir from them
            segmentation = folder / lumiere.DBT_SEG
            segmentation.parent.mkdir(parents=True)
            segmentation.hardlink_to(header_only)
            volumes = {key: float(rng.randint(0, 40_000)) for key in lumiere.DBT_VOLUME_KEYS.values()}
            (folder / lumiere.DBT_VOLUMES).write_text(json.dumps(volumes))
            rating = "Pre-Op" if k == 0 else "Post-Op" if k == 1 else rng.choice(FOLLOW_UP_RATINGS)
            ratings.append([patient, week, "", "", rating, ""])
            completeness.append([patient, week, "x", "x", "x", "x", "", ""])
            n += 1
        demographics.append([patient, "100", rng.choice(["male", "female"]), "60", "WT", "NGS", "methylated", "0.2"])
    for name, header, rows in (
        (lumiere.RATINGS_CSV, lumiere.RATINGS_HEADER, ratings),
        (lumiere.COMPLETENESS_CSV, lumiere.COMPLETENESS_HEADER, completeness),
        (lumiere.DEMOGRAPHICS_CSV, lumiere.DEMOGRAPHICS_HEADER, demographics),
    ):
        with (root / name).open("w", newline="") as handle:
            csv.writer(handle).writerows([list(header), *rows])
    header_only.unlink()
    return n


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-c", PLAN, ",".join(HEAVY), *args, "--configfile", "config/lumiere.yaml",
               "my_site.yaml"]
    return subprocess.run(command, cwd=workdir, capture_output=True, text=True)


def timed_plan(workdir: Path) -> tuple[float, float, int, str]:
    """(wall s, CPU s, jobs planned, heavy modules imported) of one `snakemake -n`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    run = snakemake(workdir, "-n", "--quiet", "rules")
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if run.returncode != 0:
        sys.exit(f"snakemake -n failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}")
    output = run.stdout + run.stderr
    jobs = int(re.search(r"^total\s+(\d+)", output, flags=re.M).group(1))
    heavy = re.search(r"HEAVY_IMPORTS (.*)", output).group(1)
    return wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime), jobs, heavy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="timed dry runs")
    parser.add_argument("--keep", type=Path, help="build in this (new) folder and keep it")
    args = parser.parse_args()

    workdir = args.keep or Path(tempfile.mkdtemp(prefix="ranoflow-dag-speed-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        snapshot(workdir)
        n = write_tree(workdir / "LUMIERE")
        (workdir / "my_site.yaml").write_text(yaml.safe_dump({"dataset": {"root": "LUMIERE"}}))
        grid = yaml.safe_load((REPO / "config" / "lumiere.yaml").read_text())
        setup = snakemake(workdir, "--cores", "1", "results/splits/folds.json")
        if setup.returncode != 0:
            sys.exit(f"index/pairs/folds failed:\n{setup.stderr[-3000:]}")
        pairs = sum(1 for _ in open(workdir / "results" / "index" / "pairs.tsv")) - 1
        print(f"LUMIERE-sized index: {N_PATIENTS} patients, {n} studies, {pairs} scorable pairs; "
              f"{len(grid['experiments'])} experiments x {grid['folds']['k']} folds (config/lumiere.yaml)")
        for run in range(1, args.runs + 1):
            wall, cpu, jobs, heavy = timed_plan(workdir)
            print(f"snakemake -n run {run}: {jobs} jobs planned in {wall:.1f} s wall, {cpu:.1f} s CPU; "
                  f"torch/MONAI/ANTs imported: {heavy}")
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
