"""The image-derived rule row: segmentation from synthetic CT1/T1/FLAIR volumes, its per-threshold measures
and cache, and a threshold fitted on each fold's training pairs only."""

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from ranoflow import lumiere
from ranoflow.baseline import image_segmentation
from ranoflow.baseline.image_rule import fit_folds, rate_test_pairs
from ranoflow.baseline.image_segmentation import ImageSegmentationSettings, measure_manifest, segment_images
from ranoflow.baseline.study_measures import MeasureSettings

SHAPE = (20, 20, 20)
MEASURE = MeasureSettings(source="deepbratumia", new_lesion_min_volume_mm3=0.0)


def _volumes(rng=None):
    """z-scored T1, CT1 (a 4x4x4 enhancing cube of +3 and a lone +3 voxel), FLAIR (a slab of +3), brain mask."""
    rng = rng or np.random.default_rng(0)
    t1 = rng.normal(0, 0.1, SHAPE).astype(np.float32)
    ct1 = t1 + rng.normal(0, 0.1, SHAPE).astype(np.float32)
    ct1[4:8, 4:8, 4:8] += 3.0
    ct1[15, 15, 15] += 3.0  # one voxel: below min_component_mm3
    flair = rng.normal(0, 0.1, SHAPE).astype(np.float32)
    flair[4:12, 4:12, 4:8] += 3.0  # hyperintense around and beside the cube
    brain = np.zeros(SHAPE, dtype=np.uint8)
    brain[1:19, 1:19, 1:19] = 1
    return ct1, t1, flair, brain


def test_segmentation_marks_the_enhancing_blob_and_flair_edema_inside_the_brain():
    ct1, t1, flair, brain = _volumes()
    settings = ImageSegmentationSettings(flair_threshold=2.0, min_component_mm3=8.0)
    labels = segment_images(ct1, t1, flair, brain, 1.5, settings, voxel_mm3=1.0)
    cube = np.zeros(SHAPE, dtype=bool)
    cube[4:8, 4:8, 4:8] = True
    assert np.array_equal(labels == lumiere.DBT_ENHANCING, cube)  # the lone voxel is dropped
    assert (labels == lumiere.DBT_EDEMA).sum() == 8 * 8 * 4 - 64  # FLAIR slab less the enhancing cube
    # above the blob's enhancement nothing is enhancing; outside the brain mask nothing is labelled
    assert not (segment_images(ct1, t1, flair, brain, 4.0, settings, 1.0) == lumiere.DBT_ENHANCING).any()
    assert not segment_images(ct1, t1, flair, np.zeros_like(brain), 1.5, settings, 1.0).any()
    no_flair = ImageSegmentationSettings(flair_threshold=None, min_component_mm3=8.0)
    assert set(np.unique(segment_images(ct1, t1, None, brain, 1.5, no_flair, 1.0))) == {0, lumiere.DBT_ENHANCING}


def _write_study(directory, volumes, zoom=2.0):
    directory.mkdir(parents=True)
    affine = np.diag([zoom, zoom, zoom, 1.0])
    for name, data in zip(("CT1", "T1", "FLAIR", "brain_mask"), volumes):
        nib.save(nib.Nifti1Image(data, affine), str(directory / f"{name}.nii.gz"))


def _manifest(tmp_path):
    _write_study(tmp_path / "P1" / "s1", _volumes())
    (tmp_path / "P1" / "s2").mkdir(parents=True)  # preprocessed without images
    rows = [("P1", "s1", "ok", "", str(tmp_path / "P1" / "s1")), ("P1", "s2", "ok", "", str(tmp_path / "P1" / "s2")),
            ("P1", "s3", "failed", "registration diverged", str(tmp_path / "P1" / "s3"))]
    return pd.DataFrame(rows, columns=["patient", "study", "status", "reason", "dir"])


def test_each_study_is_measured_once_per_threshold_and_cached_by_content(tmp_path, monkeypatch):
    settings = ImageSegmentationSettings(thresholds=(1.5, 4.0), flair_threshold=2.0, min_component_mm3=64.0)
    manifest = _manifest(tmp_path)
    table, arrays = measure_manifest(manifest, settings, MEASURE, tmp_path / "cache")
    assert list(zip(table["study"], table["threshold"])) == [("s1", 1.5), ("s1", 4.0)]  # s2, s3 skipped
    assert table["enhancing_mm3"].tolist() == [64 * 8.0, 0.0]  # the 4x4x4 cube of 2 mm voxels, then nothing
    assert table["edema_mm3"].iloc[0] == (8 * 8 * 4 - 64) * 8.0
    assert table["enhancing_components"].tolist() == [1, 0]
    assert len(arrays["0/P1/s1/points"]) > 0 and len(arrays["1/P1/s1/points"]) == 0

    def unexpected(*args):
        raise AssertionError("measured again although nothing changed")

    monkeypatch.setattr(image_segmentation, "measure_study", unexpected)
    again, _ = measure_manifest(manifest, settings, MEASURE, tmp_path / "cache")
    pd.testing.assert_frame_equal(again, table)
    # another candidate list is another cache entry
    with pytest.raises(AssertionError, match="measured again"):
        measure_manifest(manifest, ImageSegmentationSettings(thresholds=(2.0,)), MEASURE, tmp_path / "cache")


PAIRS = pd.DataFrame({"id": ["a", "b", "c", "d"], "label": ["PD", "SD", "PD", "SD"]})
FOLDS = {"folds": [{"fold": 0, "train": ["a", "b"], "val": [], "test": ["c", "d"]},
                   {"fold": 1, "train": ["c"], "val": ["d"], "test": ["a", "b"]}]}


def _rated(predictions):
    """(assessed, missing) per candidate from {candidate: [prediction of a, b, c, d]}."""
    return [(pd.DataFrame({"id": list("abcd"), "predicted": answers}), pd.DataFrame({"id": []}))
            for answers in predictions]


def test_threshold_is_fitted_on_training_pairs_only():
    # candidate 0 is right on a, b; candidate 1 on c, d
    rated = _rated([["PD", "SD", "SD", "PD"], ["SD", "PD", "PD", "SD"]])
    fitted = fit_folds(rated, PAIRS, FOLDS, [1.0, 2.0], "SD")
    assert [fit["threshold"] for fit in fitted] == [1.0, 2.0]
    assert fitted[0]["training_balanced_accuracy"] == [1.0, 0.0]
    # relabelling fold 0's test pairs changes nothing fitted for fold 0; relabelling its training pairs does
    relabelled = PAIRS.assign(label=["PD", "SD", "SD", "PD"])
    assert fit_folds(rated, relabelled, FOLDS, [1.0, 2.0], "SD")[0]["threshold"] == 1.0
    retrained = PAIRS.assign(label=["SD", "PD", "PD", "SD"])
    assert fit_folds(rated, retrained, FOLDS, [1.0, 2.0], "SD")[0]["threshold"] == 2.0

    assessed, _ = rate_test_pairs(rated, FOLDS, fitted)
    answers = assessed.set_index("id")
    assert answers.loc[["c", "d"], "threshold"].tolist() == [1.0, 1.0]  # fold 0's test pairs at fold 0's fit
    assert answers.loc[["c", "d"], "predicted"].tolist() == ["SD", "PD"]
    assert answers.loc[["a", "b"], "predicted"].tolist() == ["SD", "PD"]


def test_unrated_training_pairs_count_as_the_missing_prediction():
    # candidate 0 rates only a (right); candidate 1 rates a and b (both wrong)
    rated = [(pd.DataFrame({"id": ["a"], "predicted": ["PD"]}), pd.DataFrame({"id": ["b"]})),
             (pd.DataFrame({"id": ["a", "b"], "predicted": ["SD", "PD"]}), pd.DataFrame({"id": []}))]
    assert fit_folds(rated, PAIRS, FOLDS, [1.0, 2.0], "SD")[0]["training_balanced_accuracy"] == [1.0, 0.0]
    assert fit_folds(rated, PAIRS, FOLDS, [1.0, 2.0], "PD")[0]["training_balanced_accuracy"] == [0.5, 0.0]
    excluded = fit_folds(rated, PAIRS, FOLDS, [1.0, 2.0], "exclude")[0]  # b left out of candidate 0's score
    assert json.loads(json.dumps(excluded))["training_balanced_accuracy"] == [1.0, 0.0]
