"""Preprocess stage on tiny analytic phantoms: bad input, skull strip, registration, QC tables."""

from __future__ import annotations

import errno
import gzip
import json
import os
import subprocess

import nibabel as nib
import numpy as np
import pytest

os.environ.setdefault("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", "1")
os.environ.setdefault("ANTS_RANDOM_SEED", "42")

ants = pytest.importorskip("ants")

from preprocess_phantoms import phantom, template  # noqa: E402

from ranoflow.preprocess import faults  # noqa: E402
from ranoflow.preprocess import image_io  # noqa: E402
from ranoflow.preprocess import qc as preprocess_qc  # noqa: E402
from ranoflow.preprocess import registration as reg  # noqa: E402
from ranoflow.preprocess import skull_strip as ss  # noqa: E402
from ranoflow.preprocess.register_job import register_job  # noqa: E402
from ranoflow.preprocess.skull_strip import skull_strip_job  # noqa: E402

LESION_CENTRE = np.array([25.0, -20.0, 20.0])  # atlas-space centre of the phantom lesion


@pytest.fixture(scope="module")
def atlas():
    head, mask = template(2.0)
    return head, mask, reg.make_atlas_grid(head, mask, 4.0, 5.0, 3.0)


def write(image, path):
    ants.image_write(image, str(path))
    return str(path)


def lesion_centroid(image: ants.ANTsImage) -> np.ndarray:
    """Physical centroid of the lesion, the brightest tissue of the CT1 and T2 phantoms."""
    voxels = np.argwhere(image.numpy() > 0.85 * image.max())
    points = [ants.transform_index_to_physical_point(image, tuple(int(i) for i in v)) for v in voxels]
    return np.mean(points, axis=0)


# --- bad input ---------------------------------------------------------------------------------


def _nifti(path, data):
    nib.save(nib.Nifti1Image(np.asarray(data, np.float32), np.eye(4)), str(path))
    return path


@pytest.mark.parametrize(
    "make, problem",
    [
        (lambda p: p.write_bytes(b"not a nifti at all"), "unreadable"),
        (lambda p: _nifti(p, np.random.rand(8, 8, 8, 3)), "3D"),
        (lambda p: _nifti(p, np.random.rand(16, 16)), "3D"),
        (lambda p: _nifti(p, np.zeros((8, 8, 8))), "empty"),
        (lambda p: _nifti(p, np.where(np.eye(8)[:, :, None] > 0, np.nan, 1.0) * np.ones((8, 8, 8))), "NaN"),
    ],
    ids=["garbage", "4d", "2d", "empty", "nan"],
)
def test_bad_input_error_names_the_file(tmp_path, make, problem):
    path = tmp_path / "T1.nii.gz"
    make(path)
    with pytest.raises(image_io.ImageError, match=problem) as error:
        image_io.load_volume(path)
    assert str(path) in str(error.value)


def test_truncated_file_error_names_the_file(tmp_path):
    full = _nifti(tmp_path / "full.nii.gz", np.random.rand(32, 32, 32))
    raw = gzip.decompress(full.read_bytes())
    truncated = tmp_path / "CT1.nii.gz"
    truncated.write_bytes(gzip.compress(raw)[: len(gzip.compress(raw)) // 2])
    with pytest.raises(image_io.ImageError, match="truncated|unreadable") as error:
        image_io.load_volume(truncated)
    assert str(truncated) in str(error.value)


def test_trailing_singleton_axis_is_3d(tmp_path):
    path = _nifti(tmp_path / "T2.nii.gz", np.random.rand(10, 11, 12, 1))
    assert image_io.load_volume(path).shape == (10, 11, 12)


def test_bad_input_is_a_logged_skip_and_raw_input_is_untouched(tmp_path):
    bad = tmp_path / "raw" / "T1.nii.gz"
    bad.parent.mkdir()
    _nifti(bad, np.zeros((8, 8, 8)))
    before = bad.read_bytes()
    record = skull_strip_job({"T1": str(bad)}, tmp_path / "m.nii.gz", tmp_path / "s.json", {"method": "passthrough"})
    assert record["status"] == "failed" and str(bad) in record["reason"]
    assert json.loads((tmp_path / "s.json").read_text())["status"] == "failed"
    with pytest.raises(image_io.ImageError):
        skull_strip_job({"T1": str(bad)}, tmp_path / "m.nii.gz", tmp_path / "s.json", {"method": "passthrough"},
                        on_error="fail")
    assert bad.read_bytes() == before


# --- anchor and skull strip --------------------------------------------------------------------


def test_anchor_is_the_finest_grid_not_the_smallest_voxel():
    lumiere = {"CT1": (1.0, 1.0, 1.0), "T1": (0.36, 0.36, 6.0), "FLAIR": (0.45, 0.45, 5.0)}
    assert reg.choose_anchor(lumiere) == "CT1"
    assert reg.choose_anchor(lumiere, "FLAIR") == "FLAIR"
    assert reg.choose_anchor({"T2": (1, 1, 1), "T1": (1, 1, 1)}) == "T1"


def test_passthrough_keeps_a_stripped_brain_intact():
    image, truth = phantom("T1", skull=False, rotation_deg=(5, 0, 0))
    mask = ss.passthrough_mask(image)
    brain = image.numpy() > 0
    assert (mask.numpy()[brain] > 0).all()  # no brain voxel lost
    assert reg.dice(mask, truth) > 0.99


def test_atlas_skull_strip_recovers_the_brain(atlas):
    head, head_mask, _ = atlas
    image, truth = phantom("CT1", (64, 76, 66), (2.5, 2.5, 2.5), (8, -6, 10), (6, -4, 9))
    mask = ss.brain_mask("atlas", image, head, head_mask, "Affine", 3.0)
    assert reg.dice(mask, truth) > 0.95


# --- registration ------------------------------------------------------------------------------


def test_displaced_phantom_returns_to_atlas_position_on_one_grid(atlas, tmp_path):
    _, _, grid = atlas
    ct1, truth = phantom("CT1", (64, 76, 66), (2.5, 2.5, 2.5), (8, -6, 10), (6, -4, 9), skull=False, seed=1)
    t2, _ = phantom("T2", (80, 96, 14), (2.0, 2.0, 6.0), (12, -3, 4), (3, -1, 12), skull=False, seed=2)
    assert np.linalg.norm(lesion_centroid(ct1) - LESION_CENTRE) > 10  # really displaced
    result = reg.register_study({"CT1": ct1, "T2": t2}, "CT1", truth, grid, grid.registration, tmp_path)
    out = {m: ants.image_read(str(tmp_path / f"{m}.nii.gz")) for m in ("CT1", "T2", "brain_mask")}
    for image in out.values():  # every output on the atlas grid
        assert image.shape == grid.brain.shape
        assert np.allclose(image.spacing, grid.brain.spacing) and np.allclose(image.origin, grid.brain.origin)
    assert np.linalg.norm(lesion_centroid(out["CT1"]) - LESION_CENTRE) < 4.0  # within one 4 mm voxel
    # The T2 lesion is bright too: the rigid T2->CT1 step composed with the atlas step puts it in place.
    assert np.linalg.norm(lesion_centroid(out["T2"]) - LESION_CENTRE) < 4.0
    assert result.dice > 0.95 and result.similarity > 0.5
    inside = out["brain_mask"].numpy() > 0
    assert abs(out["CT1"].numpy()[inside].mean()) < 1e-3 and (out["CT1"].numpy()[~inside] == 0).all()


def test_registration_is_deterministic_with_seed_and_one_thread(atlas, tmp_path):
    _, _, grid = atlas
    ct1, truth = phantom("CT1", (56, 64, 56), (3.0, 3.0, 3.0), (5, 5, -5), (2, 3, 4), skull=False)
    params = []
    for run in ("a", "b"):
        fwd, _ = reg.register_to_atlas(ct1 * truth, grid.registration, "Affine", 3.0, str(tmp_path / f"{run}_"))
        params.append(ants.read_transform(fwd[0]).parameters)
    assert np.array_equal(params[0], params[1])


def test_register_job_maps_hdglio_segmentation_and_writes_status(atlas, tmp_path):
    head, head_mask, grid = atlas
    paths = {k: write(v, tmp_path / f"{k}.nii.gz") for k, v in {
        "head": head, "hmask": head_mask, "brain": grid.brain, "bmask": grid.mask, "reg": grid.registration}.items()}
    ct1, truth = phantom("CT1", (56, 64, 56), (3.0, 3.0, 3.0), (0, 8, 0), (5, 0, 0), seed=3)
    lesion = ct1.new_image_like((ct1.numpy() > 0.8 * ct1.max()).astype(np.float32) * 2)  # HD-GLIO 2 = enhancing
    images = {"CT1": write(ct1, tmp_path / "CT1_raw.nii.gz")}
    strip = skull_strip_job(images, tmp_path / "mask.nii.gz", tmp_path / "strip.json",
                            {"method": "atlas", "resolution_mm": 3.0}, "", paths["head"], paths["hmask"])
    assert strip["status"] == "ok" and strip["anchor"] == "CT1"
    settings = {"input": "raw", "atlas_transform": "Affine", "registration_mm": 3.0, "n4": False,
                "qc": {"min_dice": 0.85, "min_similarity": 0.2}, "segmentation_space": "CT1",
                "segmentation_source": "hdglio"}
    out = tmp_path / "Patient-001" / "week-001"
    record = register_job(images, out, {"brain": paths["brain"], "brain_mask": paths["bmask"],
                                        "registration_brain": paths["reg"]}, settings, str(tmp_path / "strip.json"),
                          str(tmp_path / "mask.nii.gz"), write(lesion, tmp_path / "seg.nii.gz"))
    status = json.loads((out / "status.json").read_text())
    assert list(status)[:6] == ["status", "reason", "anchor", "dice", "similarity", "seconds"]
    assert record["status"] == "ok", record
    seg = ants.image_read(str(out / "tumour_seg.nii.gz"))
    assert set(np.unique(seg.numpy())) == {0, 1}  # HD-GLIO enhancing became DeepBraTumIA 1
    assert (out / "qc.png").stat().st_size > 1000 and (out / "transforms" / "transforms.json").is_file()


def test_register_job_strips_in_process_as_a_skull_strip_job_does(atlas, tmp_path):
    """One process per study (the default) gives the study a separate skull_strip job would, and its step times."""
    head, head_mask, grid = atlas
    head_path, mask_path = write(head, tmp_path / "head.nii.gz"), write(head_mask, tmp_path / "hmask.nii.gz")
    ct1, _ = phantom("CT1", (56, 64, 56), (3.0, 3.0, 3.0), (4, -6, 3), (3, 0, 2), seed=5)
    t2, _ = phantom("T2", (56, 64, 28), (3.0, 3.0, 6.0), (4, -6, 3), (3, 0, 2), seed=6)
    images = {"CT1": write(ct1, tmp_path / "CT1.nii.gz"), "T2": write(t2, tmp_path / "T2.nii.gz")}
    strip = {"method": "atlas", "transform": "Affine", "resolution_mm": 3.0}
    skull_strip_job(images, tmp_path / "mask.nii.gz", tmp_path / "strip.json", strip, "", head_path, mask_path)
    separate = register_job(images, tmp_path / "a" / "week-001", _grid_paths(grid, tmp_path), SETTINGS,
                            str(tmp_path / "strip.json"), str(tmp_path / "mask.nii.gz"))
    combined = register_job(images, tmp_path / "b" / "week-001", _grid_paths(grid, tmp_path), SETTINGS,
                            strip_settings=strip | {"template_head": head_path, "template_mask": mask_path})
    assert combined["status"] == separate["status"] == "ok", (combined, separate)
    for key in ("anchor", "skull_strip", "brain_volume_ml", "dice", "similarity", "modalities"):
        assert combined[key] == separate[key], key
    for name in ("CT1", "T2", "brain_mask"):
        a, b = (ants.image_read(str(tmp_path / d / "week-001" / f"{name}.nii.gz")).numpy() for d in "ab")
        assert np.array_equal(a, b), name
    assert {"skull_strip", "registration", "resampling", "qc"} <= set(combined["steps"])
    assert combined["steps"]["skull_strip"] > 0 and "skull_strip" not in os.listdir(tmp_path / "b" / "week-001")


def _grid_paths(grid, tmp_path):
    return {"brain": write(grid.brain, tmp_path / "g_brain.nii.gz"),
            "brain_mask": write(grid.mask, tmp_path / "g_mask.nii.gz"),
            "registration_brain": write(grid.registration, tmp_path / "g_reg.nii.gz")}


SETTINGS = {"input": "raw", "atlas_transform": "Affine", "registration_mm": 3.0, "n4": False,
            "qc": {"min_dice": 0.85, "min_similarity": 0.2}, "segmentation_space": "CT1",
            "segmentation_source": "deepbratumia"}


def test_brain_coverage_counts_the_voxels_left_at_one_constant():
    rng = np.random.default_rng(0)
    mask = np.ones((10, 10, 10))
    image = rng.normal(size=mask.shape)
    assert preprocess_qc.brain_coverage(image, mask) == 1.0
    image[:, :, :4] = -0.7  # a constant fill (the zero outside the scan after z-scoring)
    assert preprocess_qc.brain_coverage(image, mask) == pytest.approx(0.6)
    assert preprocess_qc.coverage_problem({"CT1": 1.0, "T2": 0.85}, 0.8) is None
    assert preprocess_qc.coverage_problem({"CT1": 1.0, "T2": 0.63}, 0.0) is None
    assert preprocess_qc.coverage_problem({"T2": 0.63}, 0.8) is None  # nothing to compare with
    assert preprocess_qc.coverage_problem({"CT1": 0.99, "T2": 0.63}, 0.8) == (
        "T2 covers 63 % of the brain mask, CT1 99 % (below preprocessing.qc.min_coverage_ratio 0.8 of the best "
        "modality: a field of view that misses part of the brain)")


def test_a_modality_covering_part_of_the_brain_fails_qc_as_a_data_fault(atlas, tmp_path):
    """A T2 whose field of view misses about 40 % of the brain (zeros from one side on): under on_error skip the
    study is failed with the coverage in its reason (a fault of the data, not of the machine); whole it passes."""
    _, _, grid = atlas
    ct1, _ = phantom("CT1", (56, 64, 56), (3.0, 3.0, 3.0), skull=False)
    t2, _ = phantom("T2", (56, 64, 56), (3.0, 3.0, 3.0), skull=False, seed=2)
    brain = np.argwhere(t2.numpy() > 0)
    cut = int(np.quantile(brain[:, 2], 0.4))
    half = t2.numpy()
    half[:, :, :cut] = 0
    strip = tmp_path / "strip.json"
    images = {"CT1": write(ct1, tmp_path / "CT1.nii.gz"), "T2": write(t2, tmp_path / "T2.nii.gz")}
    skull_strip_job(images, tmp_path / "mask.nii.gz", strip, {"method": "passthrough"})
    whole = register_job(images, tmp_path / "whole" / "week-001", _grid_paths(grid, tmp_path), SETTINGS, str(strip),
                         str(tmp_path / "mask.nii.gz"))
    assert whole["status"] == "ok" and min(whole["coverage"].values()) > 0.95, whole
    images["T2"] = write(t2.new_image_like(half), tmp_path / "T2_half.nii.gz")
    out = tmp_path / "half" / "week-001"
    record = register_job(images, out, _grid_paths(grid, tmp_path), SETTINGS, str(strip), str(tmp_path / "mask.nii.gz"))
    assert record["status"] == "failed", record
    assert record["reason"].startswith("CoverageError: T2 covers ") and "CT1 " in record["reason"]
    assert json.loads((out / "status.json").read_text())["reason"] == record["reason"]
    with pytest.raises(preprocess_qc.CoverageError):
        register_job(images, tmp_path / "fail" / "week-001", _grid_paths(grid, tmp_path), SETTINGS, str(strip),
                     str(tmp_path / "mask.nii.gz"), on_error="fail")


def test_longitudinal_follow_up_registers_to_its_reference_study(atlas, tmp_path):
    _, _, grid = atlas
    grid_paths = _grid_paths(grid, tmp_path)
    dirs = []
    for name, pose in (("week-001", ((0, 0, 0), (0, 0, 0))), ("week-010", ((10, -8, 6), (7, 5, -6)))):
        image, truth = phantom("CT1", (56, 64, 56), (3.0, 3.0, 3.0), *pose, skull=False)
        images = {"CT1": write(image, tmp_path / f"{name}_CT1.nii.gz")}
        strip = tmp_path / f"{name}.json"
        skull_strip_job(images, tmp_path / f"{name}_mask.nii.gz", strip, {"method": "passthrough"})
        out = tmp_path / "Patient-001" / name
        reference = str(dirs[0]) if dirs else None
        record = register_job(images, out, grid_paths, SETTINGS, str(strip), str(tmp_path / f"{name}_mask.nii.gz"),
                              reference_dir=reference)
        assert record["status"] == "ok", record
        dirs.append(out)
    assert record["reference"] == "week-001"
    masks = [ants.image_read(str(d / "brain_mask.nii.gz")) for d in dirs]
    assert reg.dice(*masks) > 0.97


def test_deepbratumia_input_is_only_resampled(atlas, tmp_path):
    _, _, grid = atlas
    images = {}
    for modality in ("CT1", "FLAIR"):  # DeepBraTumIA's skull_strip images: stripped, already in atlas space
        image, _ = phantom(modality, (60, 72, 60), (2.5, 2.5, 2.5), skull=False)
        images[modality] = write(image, tmp_path / f"{modality.lower()}_skull_strip.nii.gz")
    out = tmp_path / "Patient-003" / "week-005"
    record = register_job(images, out, _grid_paths(grid, tmp_path), SETTINGS | {"input": "deepbratumia"})
    assert record["status"] == "ok" and record["dice"] > 0.97
    assert json.loads((out / "transforms" / "transforms.json").read_text()) == {"CT1": [], "FLAIR": []}


def test_register_job_failure_leaves_only_a_failed_status(atlas, tmp_path):
    _, _, grid = atlas
    strip = tmp_path / "strip.json"
    strip.write_text(json.dumps({"status": "failed", "reason": "x.nii.gz: empty image", "anchor": ""}))
    out = tmp_path / "Patient-002" / "week-003"
    record = register_job({"CT1": "missing.nii.gz"}, out, {}, {"input": "raw"}, str(strip))
    assert record["status"] == "failed" and "empty image" in record["reason"]
    assert [p.name for p in out.iterdir()] == ["status.json"]


def test_n4_inside_flattens_a_bias_field():
    image, truth = phantom("T1", (40, 48, 40), (4.0, 4.0, 4.0), skull=False)
    ramp = np.linspace(0.6, 1.4, image.shape[0], dtype=np.float32)[:, None, None]
    biased = image.new_image_like(image.numpy() * ramp)
    wm = (image.numpy() > 60) & (truth.numpy() > 0)  # white matter: one tissue, so flat after correction
    spread = lambda img: img.numpy()[wm].std() / img.numpy()[wm].mean()  # noqa: E731
    assert spread(reg.n4_inside(biased, truth)) < 0.6 * spread(biased)


def test_n4_fits_on_about_4_mm_whatever_the_grid():
    assert reg.n4_shrink((1.5, 1.5, 1.5)) == 3  # LUMIERE's 1.5 mm grid: fit at 4.5 mm, not at full resolution
    assert reg.n4_shrink((1.0, 1.0, 1.0)) == 4
    assert reg.n4_shrink((5.0, 5.0, 5.0)) == 1


# --- QC tables ---------------------------------------------------------------------------------


def test_aggregate_flags_cohort_outliers_and_keeps_failed(tmp_path):
    dirs = []
    for i, dice in enumerate([0.97, 0.968, 0.972, 0.969, 0.971, 0.70, None]):
        study = tmp_path / f"Patient-00{i}" / "week-001"
        study.mkdir(parents=True)
        status = {"status": "ok" if dice else "failed", "reason": "" if dice else "bad", "anchor": "CT1",
                  "dice": dice, "similarity": 0.8, "seconds": 3.0, "modalities": ["CT1", "T1"] if dice else []}
        preprocess_qc.write_status(study / "status.json", status)
        dirs.append(study)
    qc, manifest = preprocess_qc.aggregate(dirs, outlier_mad=4.0)
    assert list(manifest.columns) == ["patient", "study", "status", "reason", "dir", "modalities", "checksum"]
    assert manifest["status"].tolist() == ["ok"] * 5 + ["flagged", "failed"]
    assert "cohort outlier" in manifest.loc[5, "reason"] and manifest.loc[0, "modalities"] == "CT1,T1"
    assert "dice" in qc.columns and len(qc) == 7


def test_judge_thresholds():
    assert preprocess_qc.judge(0.97, 0.8, 0.85, 0.2) == ("ok", "")
    status, reason = preprocess_qc.judge(0.6, 0.1, 0.85, 0.2)
    assert status == "flagged" and "Dice" in reason and "similarity" in reason


def test_patient_batch_reads_each_study_with_the_shared_atlas(tmp_path):
    from ranoflow.preprocess.batch import study_inputs
    from ranoflow.preprocess.qc import study_dirs

    inputs = {"week-001/image_CT1": "a/ct1.nii.gz", "week-001/seg": "a/seg.nii.gz", "week-010/image_CT1": "b/ct1.nii.gz",
              "brain": "atlas/brain.nii.gz", "brain_mask": "atlas/mask.nii.gz", "registration_brain": "atlas/r.nii.gz"}
    assert study_inputs(inputs, "week-001") == {
        "image_CT1": "a/ct1.nii.gz", "seg": "a/seg.nii.gz", "brain": "atlas/brain.nii.gz",
        "brain_mask": "atlas/mask.nii.gz", "registration_brain": "atlas/r.nii.gz"}
    # preprocess_manifest's inputs: study folders (batch: study) or patient folders (batch: patient)
    for study in ("P1/week-001", "P1/week-010", "P2/week-003"):
        (tmp_path / study / "transforms").mkdir(parents=True)
        (tmp_path / study / "status.json").write_text("{}")
    assert study_dirs([tmp_path / "P1", tmp_path / "P2"]) == [tmp_path / s for s in ("P1/week-001", "P1/week-010", "P2/week-003")]
    assert study_dirs([tmp_path / "P2/week-003"]) == [tmp_path / "P2/week-003"]


# --- faults of the machine are not faults of the data -----------------------------------------------


@pytest.mark.parametrize(
    "error, machine",
    [
        (OSError(errno.ENOSPC, "No space left on device"), True),
        (OSError(errno.EIO, "Input/output error"), True),
        (OSError(errno.EROFS, "Read-only file system"), True),
        (MemoryError("Unable to allocate 3.2 GiB"), True),
        (RuntimeError("ITK ERROR: NiftiImageIO: could not write: No space left on device"), True),
        (image_io.ImageError("CT1.nii.gz", "truncated or corrupt data (gzip.BadGzipFile)"), False),
        (gzip.BadGzipFile("Not a gzipped file"), False),  # an OSError without errno: the file, not the disk
        (ValueError("no modality image available for this study"), False),
        (RuntimeError("skull strip failed: brain volume 12 ml < 200 ml"), False),
    ],
)
def test_machine_faults_are_told_from_data_faults(error, machine):
    assert (faults.machine_fault(error) is not None) == machine
    wrapped = image_io.ImageError("CT1.nii.gz", "read failed")
    wrapped.__cause__ = error  # an EIO met while reading an image is still the machine's
    assert (faults.machine_fault(wrapped) is not None) == machine


def test_a_full_disk_fails_the_register_job_and_leaves_no_status(atlas, tmp_path, monkeypatch):
    """With on_error: skip, ENOSPC raises (the job fails, the next run retries) instead of a 'failed' study."""
    _, _, grid = atlas
    image, _ = phantom("CT1", (40, 48, 40), (3.0, 3.0, 3.0), skull=False)
    images = {"CT1": write(image, tmp_path / "CT1.nii.gz")}
    strip = tmp_path / "strip.json"
    skull_strip_job(images, tmp_path / "mask.nii.gz", strip, {"method": "passthrough"})

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", "transforms/CT1_0GenericAffine.mat")

    monkeypatch.setattr(reg, "register_study", full_disk)
    out = tmp_path / "Patient-001" / "week-001"
    with pytest.raises(faults.MachineFault, match="No space left on device.*retried"):
        register_job(images, out, _grid_paths(grid, tmp_path), SETTINGS, str(strip), str(tmp_path / "mask.nii.gz"),
                     on_error="skip")
    assert list(out.iterdir()) == []  # no status.json: nothing a later stage would read as a verdict


def _mount_tmpfs(folder, size):
    folder.mkdir(parents=True)
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                                           capture_output=True).returncode:
        pytest.skip("needs root to mount a small tmpfs")


def test_a_real_full_tmpfs_fails_the_study_and_freeing_space_lets_it_through(atlas, tmp_path):
    """A 1 MiB tmpfs filled up: the register job raises; once the filler is gone the same call preprocesses it."""
    _, _, grid = atlas
    image, _ = phantom("CT1", (56, 64, 56), (3.0, 3.0, 3.0), skull=False)
    images = {"CT1": write(image, tmp_path / "CT1.nii.gz")}
    strip = tmp_path / "strip.json"
    skull_strip_job(images, tmp_path / "mask.nii.gz", strip, {"method": "passthrough"})
    grid_paths = _grid_paths(grid, tmp_path)
    disk = tmp_path / "results"
    _mount_tmpfs(disk, "1m")
    try:
        filler = disk / "filler"
        with open(filler, "wb") as handle:
            with pytest.raises(OSError):
                while True:
                    handle.write(b"\0" * 65536)
                    handle.flush()
            handle.truncate(max(0, handle.tell() - 8192))  # a few KiB left: the job's folder fits, its images not
        out = disk / "Patient-001" / "week-001"
        with pytest.raises(faults.MachineFault):
            register_job(images, out, grid_paths, SETTINGS, str(strip), str(tmp_path / "mask.nii.gz"), on_error="skip")
        assert not (out / "status.json").exists()
        filler.unlink()
        record = register_job(images, out, grid_paths, SETTINGS, str(strip), str(tmp_path / "mask.nii.gz"),
                              on_error="skip")
        assert record["status"] == "ok", record
    finally:
        subprocess.run(["umount", str(disk)], check=True)
