"""Embedded LUMIERE-shaped demo dataset: plan every patient's course, render the studies, write the tree.

Written under `root`: `Imaging/Patient-NNN/week-WWW[-k]/{CT1,T1,T2,FLAIR}.nii.gz` (native scanner grids:
CT1 isotropic, T1/T2/FLAIR thick slices; each study in its own head pose and scanner gain), per complete
study the DeepBraTumIA outputs (atlas space = the template's canonical space; native = CT1 grid) and the
HD-GLIO-AUTO outputs, the three CSV files, and beside them the generator's truth (`generator_truth.tsv`:
each study's RANO rating, planned enhancing volume, baseline and nadir study). Outside the tree: the whole-head template with its brain
mask, and per study the true brain mask and tumour labels on the CT1 grid.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, fields
from pathlib import Path
from collections.abc import Sequence
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd

from ranoflow import lumiere
from ranoflow.dataset import phantom
from ranoflow.dataset.course import (
    PatientPlan,
    PoseLimits,
    StudyPlan,
    plan_patient,
    quirks_by_patient,
    reference_effects,
)
from ranoflow.dataset.csv_tables import truth_table, write_tables
from ranoflow.dataset.guard import MARKER
from ranoflow.vocabulary import CLASSES, MODALITIES

log = logging.getLogger(__name__)

NATIVE_FOV_MM = (228.0, 256.0, 240.0)  # covers the largest head in any pose
TEMPLATE_FOV_MM = (168.0, 204.0, 180.0)  # covers the un-posed head
ATLAS_SIGNAL = 1000.0
GENERATOR_TRUTH = "generator_truth.tsv"  # beside the CSV files, outside Imaging/


@dataclass(frozen=True)
class SyntheticConfig:
    """The `dataset.synthetic` config section (defaults as in the schema)."""

    n_patients: int = 24
    studies_per_patient: tuple[int, int] = (4, 7)
    seed: int = 7
    skull: bool = True
    voxel_mm: float = 3.0
    slice_mm: float = 6.0
    template_mm: float = 2.5
    noise: float = 0.03
    max_rotation_deg: float = 10.0
    max_translation_mm: float = 10.0
    max_motion_deg: float = 2.0
    max_motion_mm: float = 2.0
    quirks: bool = True

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SyntheticConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown dataset.synthetic key(s): {', '.join(sorted(unknown))}")
        values = dict(values)
        if "studies_per_patient" in values:
            low, high = values["studies_per_patient"]
            if not 3 <= low <= high:
                raise ValueError("dataset.synthetic.studies_per_patient: need 3 <= min <= max")
            values["studies_per_patient"] = (int(low), int(high))
        return cls(**values)

    @property
    def pose_limits(self) -> PoseLimits:
        return PoseLimits(self.max_rotation_deg, self.max_translation_mm, self.max_motion_deg, self.max_motion_mm)

    @property
    def ct1_grid(self) -> phantom.Grid:
        return phantom.Grid.centred(NATIVE_FOV_MM, (self.voxel_mm,) * 3)

    @property
    def thick_grid(self) -> phantom.Grid:
        return phantom.Grid.centred(NATIVE_FOV_MM, (self.voxel_mm, self.voxel_mm, self.slice_mm))

    @property
    def template_grid(self) -> phantom.Grid:
        return phantom.Grid.centred(TEMPLATE_FOV_MM, (self.template_mm,) * 3)


def plan_dataset(config: SyntheticConfig, n_new: int = 0) -> list[PatientPlan]:
    """Every patient's course, seeded by (seed, k) for patient k; `n_new` more patients after the cohort
    (without CSV quirks) leave the cohort's plans unchanged."""
    quirks = quirks_by_patient(config.n_patients, config.quirks) + [set() for _ in range(n_new)]
    drawn: Counter[str] = Counter()
    plans = []
    for k in range(config.n_patients + n_new):
        rng = np.random.default_rng([config.seed, k])
        n_studies = int(rng.integers(config.studies_per_patient[0], config.studies_per_patient[1] + 1))
        plans.append(
            plan_patient(k + 1, rng, n_studies, quirks[k], config.pose_limits, drawn)
        )
    return plans


def save(data: np.ndarray, grid: phantom.Grid, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(phantom.nifti(data, grid), path)


def render_study(
    config: SyntheticConfig,
    plan: PatientPlan,
    index: int,
    root: Path,
    truth: Path,
    atlas: tuple[phantom.Points, np.ndarray],
) -> None:
    """Write one study's images, segmentations and truth; `atlas`: template grid points and labels."""
    study: StudyPlan = plan.studies[index]
    rng = np.random.default_rng([config.seed, int(plan.patient.split("-")[1]), index, 1])
    ct1_grid, thick_grid, template_grid = config.ct1_grid, config.thick_grid, config.template_grid
    samples = max(1, int(np.ceil(config.slice_mm / config.voxel_mm)))
    folder = lumiere.study_dir(root, plan.patient, study.name)
    rendered: dict[tuple[bool, int], list[np.ndarray]] = {}  # modalities without motion share labels
    for modality, gain, pose in zip(MODALITIES, study.gains, study.poses):
        if modality not in study.modalities and modality != "CT1":  # CT1's labels are the truth
            continue
        grid, n = (ct1_grid, 1) if modality == "CT1" else (thick_grid, samples)
        key = (modality == "CT1", id(pose))
        if key not in rendered:
            rendered[key] = phantom.render_labels(grid, pose, plan.head, study.tumour, n)
        labels = rendered[key]
        image = phantom.acquire(phantom.contrast_image(labels, modality), grid, rng, gain, config.noise)
        if not config.skull:  # like LUMIERE's raw images: zero outside the brain
            image[phantom.brain_fraction(labels) < 0.5] = 0
        if modality in study.modalities:
            save(image, grid, folder / f"{modality}.nii.gz")

    native = rendered[(True, id(study.poses[0]))][0]

    truth_dir = truth / plan.patient / study.name
    save(phantom.IS_BRAIN[native].astype(np.uint8), ct1_grid, truth_dir / "brain_mask.nii.gz")
    save(phantom.DBT_LABEL[native], ct1_grid, truth_dir / "tumour.nii.gz")
    if study.missing:
        return  # DeepBraTumIA and HD-GLIO-AUTO need all four modalities

    labels_atlas = phantom.tumour_labels(*atlas, study.tumour)
    brain = phantom.IS_BRAIN[labels_atlas]
    seg = phantom.DBT_LABEL[labels_atlas]
    save(brain.astype(np.uint8), template_grid, folder / lumiere.DBT_BRAIN_MASK)
    for modality in MODALITIES:
        stripped = np.rint(phantom.CONTRAST[modality][labels_atlas] * ATLAS_SIGNAL * brain).astype(np.int16)
        save(stripped, template_grid, folder / lumiere.DBT_SKULLSTRIP[modality])
    save(seg, template_grid, folder / lumiere.DBT_SEG)
    volumes = phantom.dbt_volumes(seg, template_grid)
    (folder / lumiere.DBT_VOLUMES).write_text(json.dumps(volumes, indent=2) + "\n")
    save(phantom.DBT_LABEL[native], ct1_grid, folder / lumiere.DBT_NATIVE_SEG)
    save(phantom.HDGLIO_LABEL[native], ct1_grid, folder / lumiere.HDGLIO_SEG)
    save(phantom.HDGLIO_LABEL[labels_atlas], template_grid, folder / lumiere.HDGLIO_REGISTERED_SEG)


def render_patient(config: SyntheticConfig, plan: PatientPlan, root: Path, truth: Path) -> str:
    """Write every study of one patient (a worker task)."""
    points = config.template_grid.atlas_points(phantom.Pose())
    atlas = (points, phantom.anatomy_labels(points, phantom.Head()))
    for index in range(len(plan.studies)):
        render_study(config, plan, index, root, truth, atlas)
    return plan.patient


def write_template(config: SyntheticConfig, head_path: Path, mask_path: Path) -> None:
    """Canonical whole-head template (T1 contrast, skull kept, no tumour) and its brain mask."""
    grid = config.template_grid
    labels = phantom.anatomy_labels(grid.atlas_points(phantom.Pose()), phantom.Head())
    head = np.rint(phantom.CONTRAST["T1"][labels] * ATLAS_SIGNAL).astype(np.int16)
    save(head, grid, head_path)
    save(phantom.IS_BRAIN[labels].astype(np.uint8), grid, mask_path)


def generate_dataset(
    config: SyntheticConfig,
    root: str | Path,
    template_dir: str | Path,
    truth_dir: str | Path,
    threads: int = 1,
) -> dict[str, Any]:
    """Write the whole synthetic tree; returns a summary (patients, studies, changes, seconds)."""
    start = time.perf_counter()
    root, template_dir, truth_dir = Path(root), Path(template_dir), Path(truth_dir)
    for folder in (root / lumiere.IMAGING_DIR, truth_dir):
        if folder.exists() and any(folder.iterdir()):
            raise FileExistsError(f"{folder}: not empty; remove it first (it is regenerated whole)")
    root.mkdir(parents=True, exist_ok=True)
    (root / MARKER).write_text("a synthetic LUMIERE-shaped tree written by ranoflow's synthetic_dataset rule\n")
    plans = plan_dataset(config)
    write_tables(
        plans, root / lumiere.RATINGS_CSV, root / lumiere.COMPLETENESS_CSV, root / lumiere.DEMOGRAPHICS_CSV
    )
    truth_table(plans).to_csv(root / GENERATOR_TRUTH, sep="\t", index=False)
    write_template(config, template_dir / "head.nii.gz", template_dir / "brain_mask.nii.gz")
    if threads > 1:
        with ProcessPoolExecutor(max_workers=threads) as pool:
            done = list(pool.map(render_patient, *zip(*[(config, p, root, truth_dir) for p in plans])))
    else:
        done = [render_patient(config, plan, root, truth_dir) for plan in plans]
    changes = Counter(s.change for plan in plans for s in plan.studies)
    summary = {
        "patients": len(done),
        "studies": sum(len(plan.studies) for plan in plans),
        "changes": dict(sorted(changes.items())),
        "reference_effects": dict(sorted(reference_effects(plans).items())),
        "seconds": round(time.perf_counter() - start, 2),
    }
    log.info("synthetic dataset under %s: %s", root, summary)
    return summary


def plan_new_patients(config: SyntheticConfig, n_new: int) -> list[PatientPlan]:
    """Patients beyond the cohort (numbers n_patients+1 ...), drawn as if the cohort went on."""
    return plan_dataset(config, n_new)[config.n_patients :]


def new_patient_sheet(plans: Sequence[PatientPlan]) -> pd.DataFrame:
    """A predict sample sheet of every rated follow-up of `plans`: its current study, the study before it,
    and the baseline and nadir the generator rated it against (folders relative to the sheet)."""
    truth = truth_table(plans)
    rows = []
    for plan in plans:
        studies = truth[truth["patient"] == plan.patient].reset_index(drop=True)
        for i, study in studies.iterrows():
            if study["rating"] not in CLASSES or not study["baseline"] or not study["nadir"]:
                continue
            roles = {"current": study["study"], "previous": studies.loc[i - 1, "study"],
                     "baseline": study["baseline"], "nadir": study["nadir"]}
            for role, name in roles.items():
                rows.append({"follow_up": f"{plan.patient}_{study['study']}", "role": role,
                             "folder": f"{lumiere.IMAGING_DIR}/{plan.patient}/{name}"})
    return pd.DataFrame(rows, columns=["follow_up", "role", "folder"])


def generate_new_patients(config: SyntheticConfig, n_new: int, out_dir: str | Path, truth_dir: str | Path) -> dict:
    """Patients outside the cohort to rate with a trained model: `Imaging/` in the LUMIERE layout, a
    predict sample sheet (`sheet.tsv`) and the generator's ratings of them (`generator_truth.tsv`)."""
    out_dir = Path(out_dir)
    plans = plan_new_patients(config, n_new)
    out_dir.mkdir(parents=True, exist_ok=True)
    for plan in plans:
        render_patient(config, plan, out_dir, Path(truth_dir))
    truth_table(plans).to_csv(out_dir / GENERATOR_TRUTH, sep="\t", index=False)
    sheet = new_patient_sheet(plans)
    sheet.to_csv(out_dir / "sheet.tsv", sep="\t", index=False)
    return {"patients": [p.patient for p in plans], "follow_ups": int(sheet["follow_up"].nunique())}
