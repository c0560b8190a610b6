"""The embedded LUMIERE-shaped synthetic dataset: layout, CSV headers and quirks, RANO-consistent tumours."""

from __future__ import annotations

import csv
import hashlib
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from ranoflow import lumiere
from ranoflow.dataset.course import reference_effects
from ranoflow.dataset.generator import GENERATOR_TRUTH, SyntheticConfig, generate_dataset, plan_dataset
from ranoflow.index.demographics import read_demographics
from ranoflow.index.pairs import build_pairs
from ranoflow.index.studies import build_index
from ranoflow.index.volumes import study_volumes, volume_lookup
from ranoflow.dataset.guard import MARKER
from ranoflow.vocabulary import CLASSES, MODALITIES

REPO = Path(__file__).resolve().parents[2]
# Small grids keep the tests fast; the atlas grid stays fine enough to measure small residual lesions.
TINY = dict(n_patients=6, studies_per_patient=(4, 5), seed=3, voxel_mm=8.0, slice_mm=16.0, template_mm=3.0)


def build(tmp: Path, threads: int = 1, **overrides) -> tuple[Path, dict]:
    config = SyntheticConfig.from_dict({**TINY, **overrides})
    summary = generate_dataset(config, tmp / "LUMIERE", tmp / "template", tmp / "truth", threads)
    return tmp, summary


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("synthetic"))[0]


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}


def study_folders(root: Path) -> dict[str, list[str]]:
    imaging = root / "LUMIERE" / lumiere.IMAGING_DIR
    return {
        patient.name: sorted((s.name for s in patient.iterdir()), key=lumiere.study_key)
        for patient in sorted(imaging.iterdir())
    }


def test_same_seed_same_bytes(dataset, tmp_path):
    again, _ = build(tmp_path, threads=2)  # the parallel path writes the same bytes
    assert tree_digest(dataset) == tree_digest(again)


def test_other_seed_other_data(dataset, tmp_path):
    other, _ = build(tmp_path, seed=4, n_patients=2)
    a = nib.load(dataset / "LUMIERE/Imaging/Patient-001/week-000-1/CT1.nii.gz").get_fdata()
    b = nib.load(other / "LUMIERE/Imaging/Patient-001" / study_folders(other)["Patient-001"][0] / "CT1.nii.gz")
    assert not np.array_equal(a, b.get_fdata())


def test_csv_headers_exact(dataset):
    root = dataset / "LUMIERE"
    assert read_csv(root / "LUMIERE-ExpertRating-v202211.csv")[0] == [
        "Patient",
        "Date",
        "LessThan3Months",
        "NonMeasurableLesions",
        "Rating (according to RANO, PD: Progressive disease, SD: Stable disease, PR: Partial response, "
        "CR: Complete response, Pre-Op: Pre-Operative, Post-Op: Post-Operative)",
        "Rating rationale (CRET: complete resection of the enhancing tumor, PRET: partial resection of the "
        "enhancing tumor, T2-Progr.: T2-Progression, L: Lesion)",
    ]
    assert read_csv(root / "LUMIERE-datacompleteness.csv")[0] == [
        "Patient", "Timepoint", "CT1", "T1", "T2", "FLAIR", "DeepBraTumIA", "HD-GLIO-AUTO",
    ]  # fmt: skip
    assert read_csv(root / "LUMIERE-Demographics_Pathology.csv")[0] == [
        "Patient",
        "Survival time (weeks)",
        "Sex",
        "Age at surgery (years)",
        "IDH (WT: wild type)",
        "IDH method",
        "MGMT qualitative",
        "MGMT quantitative",
    ]


def test_every_quirk_present(dataset):
    root = dataset / "LUMIERE"
    _, ratings = read_csv(root / lumiere.RATINGS_CSV)
    _, completeness = read_csv(root / lumiere.COMPLETENESS_CSV)
    _, demographics = read_csv(root / lumiere.DEMOGRAPHICS_CSV)
    texts = Counter(row[lumiere.RATING_COLUMN] for row in ratings)
    assert {"Post-Op ", "None", "", "Post-Op/PD", "Pre-Op", "Post-Op"} <= set(texts)
    assert any(row["LessThan3Months"] == "x" for row in ratings)
    rationales = [row[lumiere.RATIONALE_COLUMN] for row in ratings]
    assert any("3 months" in r for r in rationales)
    assert "Not a timepoint for RANO measurement" in rationales

    folders = study_folders(dataset)
    on_disk = {(p, s) for p, studies in folders.items() for s in studies}
    rated = {(row["Patient"], row["Date"]) for row in ratings}
    assert rated - on_disk, "a rating row without a study folder"
    assert on_disk - rated, "a study folder without a rating row"
    assert any({"week-000-1", "week-000-2"} <= set(studies) for studies in folders.values())

    missing = [(row, m) for row in completeness for m in MODALITIES if row[m] != "x"]
    assert missing, "a study with a missing modality"
    for row, modality in missing:
        folder = lumiere.study_dir(root, row["Patient"], row["Timepoint"])
        assert folder.is_dir() and not (folder / f"{modality}.nii.gz").exists()
        assert row["DeepBraTumIA"] == "" and not (folder / lumiere.DBT_DIR).exists()
    assert {(row["Patient"], row["Timepoint"]) for row in completeness} == on_disk

    for patient, studies in folders.items():
        by_study = {row["Date"]: row[lumiere.RATING_COLUMN] for row in ratings if row["Patient"] == patient}
        assert by_study[studies[0]] == "Pre-Op"
        assert by_study[studies[1]].strip() == "Post-Op"
        assert "Pre-Op" not in [by_study.get(s) for s in studies[1:]]
    assert {row["Sex"] for row in demographics} <= {"male", "female"}
    assert {row["IDH (WT: wild type)"] for row in demographics} <= {"WT", "Mutated", "unknown"}
    assert {row["MGMT qualitative"] for row in demographics} <= {"methylated", "not methylated", "na"}


def enhancing(folder: Path) -> tuple[float, int]:
    """Measured enhancing volume (mm^3) and number of enhancing lesions of a study."""
    volumes = json.loads((folder / lumiere.DBT_VOLUMES).read_text())
    seg = np.asarray(nib.load(folder / lumiere.DBT_SEG).dataobj)
    tumour = ndimage.binary_dilation(seg == lumiere.DBT_ENHANCING)  # merge rims cut by necrosis
    return volumes["Enhancing_Core"], ndimage.label(tumour)[1]


def test_ratings_follow_from_the_volumes_by_rano(dataset):
    """RANO 2.0 volumetric on the generator's truth: PD >= +40 % from the nadir (to >= 1 cm³) or a new lesion,
    CR no enhancing tumour, PR <= -65 % from a measurable baseline, else SD; growth within 12 weeks is not PD."""
    truth = pd.read_csv(dataset / "LUMIERE" / GENERATOR_TRUTH, sep="\t", keep_default_na=False)
    volume = dict(zip(zip(truth["patient"], truth["study"]), truth["enhancing_mm3"]))
    checked = Counter()
    for row in truth[truth["rating"].isin(CLASSES)].itertuples():
        v, base, nadir = row.enhancing_mm3, volume[(row.patient, row.baseline)], volume[(row.patient, row.nadir)]
        if row.new_lesion or (not row.less_than_3_months and v >= 1000 and v >= 1.4 * nadir):
            expected = "PD"
        elif v == 0:
            expected = "CR"
        elif base >= 1000 and v <= 0.35 * base:
            expected = "PR"
        else:
            expected = "SD"
        assert row.rating == expected, row
        checked[row.rating] += 1
    assert set(checked) == set(CLASSES), checked


def test_nadir_rule_picks_the_generators_nadir(dataset):
    root = dataset / "LUMIERE"
    index = build_index(root, root / lumiere.RATINGS_CSV, root / lumiere.COMPLETENESS_CSV)
    volumes = volume_lookup(study_volumes(index.studies, "synthetic"))
    pairs, _ = build_pairs(index.studies, index.orphans, read_demographics(root / lumiere.DEMOGRAPHICS_CSV),
                           reference="nadir", volumes=volumes)
    truth = pd.read_csv(root / GENERATOR_TRUTH, sep="\t", keep_default_na=False).set_index(["patient", "study"])
    expected = [truth.loc[(p, c), ["baseline", "nadir"]].tolist() for p, c in zip(pairs["patient"], pairs["current"])]
    assert [[b, n] for b, n in zip(pairs["baseline"], pairs["nadir"])] == expected
    assert list(pairs["reference"]) == list(pairs["nadir"]) and len(pairs) >= 8


def test_the_reference_matters_in_the_demo():
    """Maintained responses and growth from the nadir occur: the previous scan alone rates them otherwise."""
    effects = reference_effects(plan_dataset(SyntheticConfig()))
    assert effects["PR by history, SD against the previous scan"] >= 3, effects
    assert effects["PD by history, SD against the previous scan"] >= 5, effects


def test_demo_classes_balanced():
    """Default demo: every class present, CR often enough for each of 3 folds (>= 8 rated CR)."""
    plans = plan_dataset(SyntheticConfig())
    rated = Counter(s.rating for p in plans for s in p.studies if s.rating in CLASSES)
    assert min(rated.values()) >= 8 and set(rated) == set(CLASSES), rated
    for plan in plans:
        assert [s.change for s in plan.studies[:2]] == ["Pre-Op", "Post-Op"]


def test_native_grids_anisotropic(dataset):
    folder = dataset / "LUMIERE/Imaging/Patient-002" / study_folders(dataset)["Patient-002"][0]
    ct1 = nib.load(folder / "CT1.nii.gz")
    assert ct1.header.get_zooms() == (8.0, 8.0, 8.0)
    for modality in ("T1", "T2", "FLAIR"):
        image = nib.load(folder / f"{modality}.nii.gz")
        assert image.header.get_zooms() == (8.0, 8.0, 16.0)
        assert image.shape[2] < ct1.shape[2]
    truth = dataset / "truth/Patient-002" / folder.name
    for name in ("brain_mask.nii.gz", "tumour.nii.gz"):
        assert np.allclose(nib.load(truth / name).affine, ct1.affine)
    for sub_path in (lumiere.DBT_NATIVE_SEG, lumiere.HDGLIO_SEG):
        assert nib.load(folder / sub_path).shape == ct1.shape
    template = nib.load(dataset / "template/head.nii.gz")
    for sub_path in (lumiere.DBT_SEG, lumiere.DBT_BRAIN_MASK, lumiere.HDGLIO_REGISTERED_SEG, *lumiere.DBT_SKULLSTRIP.values()):
        assert np.allclose(nib.load(folder / sub_path).affine, template.affine), sub_path


def test_skull_option(tmp_path):
    """Skull off zeroes everything outside the brain; inside the brain both versions agree."""
    kept, _ = build(tmp_path / "kept", n_patients=2, quirks=False)
    stripped, _ = build(tmp_path / "stripped", n_patients=2, quirks=False, skull=False)
    study = "Patient-001/" + study_folders(kept)["Patient-001"][0]
    brain = nib.load(kept / "truth" / study / "brain_mask.nii.gz").get_fdata() > 0
    with_skull = nib.load(kept / "LUMIERE/Imaging" / study / "CT1.nii.gz").get_fdata()
    without = nib.load(stripped / "LUMIERE/Imaging" / study / "CT1.nii.gz").get_fdata()
    assert np.array_equal(with_skull[brain], without[brain])
    assert not without[~brain].any()
    assert (with_skull[~brain] > 0.5 * with_skull[brain].mean()).sum() > 50  # scalp
    template = nib.load(kept / "template/head.nii.gz").get_fdata()
    template_brain = nib.load(kept / "template/brain_mask.nii.gz").get_fdata() > 0
    assert template[~template_brain].max() > 0 and 0.05 < template_brain.mean() < 0.6


def test_pose_differs_between_studies(dataset):
    centres = []
    for study in study_folders(dataset)["Patient-003"]:
        mask = nib.load(dataset / "truth/Patient-003" / study / "brain_mask.nii.gz")
        ijk = np.array(ndimage.center_of_mass(mask.get_fdata()))
        centres.append(nib.affines.apply_affine(mask.affine, ijk))
    distances = [np.linalg.norm(a - b) for a, b in zip(centres, centres[1:])]
    assert max(distances) > 2.0, distances


@pytest.mark.slow
def test_snakemake_rule(tmp_path):
    config = tmp_path / "config.yaml"
    synthetic = {**TINY, "n_patients": 3, "studies_per_patient": [3, 4]}
    config.write_text(json.dumps({"dataset": {"source": "synthetic", "root": "results/data", "synthetic": synthetic}}))
    command = [
        sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path),
        "--configfile", str(config), "--cores", "2", "synthetic_dataset",
    ]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True)
    assert (tmp_path / "results/data" / lumiere.RATINGS_CSV).is_file()
    assert (tmp_path / "results/data" / MARKER).is_file()
    assert (tmp_path / "results/demo/template/head.nii.gz").is_file()
    assert any((tmp_path / "results/demo/truth").rglob("tumour.nii.gz"))
    assert (tmp_path / "results/logs/synthetic_dataset/synthetic_dataset.log").is_file()


def test_modalities_move_within_a_study():
    """T1/T2/FLAIR get a small rigid motion relative to CT1; none when the motion limits are 0."""
    moving = plan_dataset(SyntheticConfig(n_patients=2))[0].studies[0].poses
    assert all(not np.allclose(moving[0].translation, pose.translation) for pose in moving[1:])
    angles = [np.degrees(np.arccos((np.trace(p.rotation @ moving[0].rotation.T) - 1) / 2)) for p in moving[1:]]
    assert max(angles) <= 2.0 + 1e-6
    still = plan_dataset(SyntheticConfig(n_patients=2, max_motion_deg=0, max_motion_mm=0))[0].studies[0].poses
    assert all(pose is still[0] for pose in still)


def test_config_rejects_unknown_keys():
    with pytest.raises(ValueError, match="n_patient"):
        SyntheticConfig.from_dict({"n_patient": 3})


def test_new_patients_leave_the_cohort_unchanged_and_come_with_a_predict_sheet() -> None:
    from ranoflow.dataset.generator import SyntheticConfig, new_patient_sheet, plan_dataset, plan_new_patients

    config = SyntheticConfig(n_patients=6, studies_per_patient=(4, 5))
    cohort, extended = plan_dataset(config), plan_dataset(config, 2)
    assert [[s.rating for s in p.studies] for p in cohort] == [[s.rating for s in p.studies] for p in extended[:6]]
    new = plan_new_patients(config, 2)
    assert [p.patient for p in new] == ["Patient-007", "Patient-008"]
    sheet = new_patient_sheet(new)
    assert set(sheet["role"]) == {"current", "previous", "baseline", "nadir"}
    assert (sheet.groupby("follow_up")["role"].count() == 4).all()
    assert sheet["folder"].str.match(r"Imaging/Patient-00[78]/week-\d+").all()
