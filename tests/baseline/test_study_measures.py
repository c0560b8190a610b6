"""Each study measured once: compartment volumes, components, diameters, lesion points, the content cache."""

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from ranoflow import segmentation as segmentation_io
from ranoflow.baseline import measurements
from ranoflow.baseline.study_measures import LesionPoints, MeasureSettings, cache_key, measure_labels, measure_studies
from ranoflow.segmentation import Segmentation

AFFINE = np.diag([1.0, 1.0, 1.0, 1.0])


def lumiere_map() -> np.ndarray:
    """LUMIERE DeepBraTumIA numbering: 1 enhancing, 2 necrosis, 3 edema; a 20x10 mm lesion and a small one."""
    labels = np.zeros((60, 60, 40), dtype=np.uint8)
    labels[5:45, 5:45, 5:35] = 3
    labels[10:30, 10:20, 10:20] = 1
    labels[14:26, 13:17, 13:17] = 2
    labels[50:53, 50:53, 5:8] = 1  # 27 mm³: below the new-lesion minimum of 100 mm³
    return labels


def test_compartment_volumes_components_and_diameters_of_lumiere_labels():
    measures = measure_labels(lumiere_map(), AFFINE, MeasureSettings(source="deepbratumia"))
    values = measures.values
    assert values["necrosis_mm3"] == 12 * 4 * 4
    assert values["enhancing_mm3"] == 20 * 10 * 10 - 12 * 4 * 4 + 27
    assert values["edema_mm3"] == 40 * 40 * 30 - 20 * 10 * 10
    assert values["enhancing_components"] == 1  # the 27 mm³ speck is noise
    assert values["measurable_lesions"] == 1
    # the axial slice (axis 2 here is S-I) of a 20 x 10 mm rectangle: corner-to-corner diagonal and its width
    assert values["largest_diameter_mm"] == pytest.approx(np.hypot(20, 10))
    seg = Segmentation(segmentation_io.enhancing_mask(lumiere_map(), "deepbratumia"), AFFINE)
    assert values["product_mm2"] == pytest.approx(measurements.bidimensional_product(seg))


@pytest.mark.parametrize("grid_mm", [1.0, 2.0])
def test_new_lesions_from_points_agree_with_distance_transforms(grid_mm):
    previous = np.zeros((50, 50, 50), dtype=np.uint8)
    previous[10:20, 10:20, 10:20] = 1
    current = previous.copy()
    current[10:20, 24:30, 10:20] = 1  # 4 mm from the previous lesion: grows out of it, not new
    current[35:45, 35:45, 35:45] = 1  # far away: new
    current[2:4, 40:42, 2:4] = 1  # 8 mm³: too small to count
    settings = MeasureSettings(source="synthetic", lesion_grid_mm=grid_mm)
    arrays = {}
    for name, labels in (("a", previous), ("b", current)):
        measured = measure_labels(labels, AFFINE, settings)
        arrays[f"P/{name}/points"], arrays[f"P/{name}/components"] = measured.points, measured.components
    segs = {name: Segmentation(labels.astype(bool), AFFINE) for name, labels in (("a", previous), ("b", current))}
    for margin in (2.0, 10.0):
        expected = measurements.count_new_lesions(segs["a"], segs["b"], margin, 100.0)
        assert LesionPoints(arrays).new_lesions("P", "a", "b", margin) == expected
    assert LesionPoints(arrays).new_lesions("P", "a", "b", 10.0) == 1


def test_every_study_measured_once_and_cached_by_content(tmp_path):
    paths = []
    for k in range(3):
        labels = lumiere_map()
        labels[10:30, 10:20, 10:20 + k] = 2
        path = tmp_path / f"seg{k}.nii.gz"
        nib.save(nib.Nifti1Image(labels, AFFINE), path)
        paths.append(str(path))
    studies = pd.DataFrame({"patient": "P", "study": ["w0", "w1", "w2", "w3"],
                            "seg_deepbratumia": [*paths, ""]})
    settings = MeasureSettings(source="deepbratumia")
    cache = tmp_path / "cache"
    table, arrays = measure_studies(studies, "seg_deepbratumia", settings, cache, workers=2)
    assert table["enhancing_mm3"].isna().tolist() == [False, False, False, True]  # w3 has no segmentation
    assert set(arrays) == {f"P/w{k}/{kind}" for k in range(3) for kind in ("points", "components")}
    assert len(list(cache.glob("*.npz"))) == 3
    again, _ = measure_studies(studies, "seg_deepbratumia", settings, cache)
    pd.testing.assert_frame_equal(table, again)
    # a changed segmentation is measured anew, the others come from the cache
    labels = lumiere_map()
    labels[:] = 0
    nib.save(nib.Nifti1Image(labels, AFFINE), paths[0])
    changed, _ = measure_studies(studies, "seg_deepbratumia", settings, cache)
    assert changed.loc[0, "enhancing_mm3"] == 0.0 and changed.loc[1, "enhancing_mm3"] == table.loc[1, "enhancing_mm3"]
    assert len(list(cache.glob("*.npz"))) == 4


def test_identical_segmentations_measured_by_parallel_workers_share_one_entry(tmp_path):
    # empty or copied label maps share a content key: workers writing that entry at once must not collide
    labels = lumiere_map()
    paths = []
    for k in range(16):
        path = tmp_path / f"seg{k}.nii.gz"
        nib.save(nib.Nifti1Image(labels, AFFINE), path)
        paths.append(str(path))
    studies = pd.DataFrame({"patient": "P", "study": [f"w{k}" for k in range(16)], "seg_deepbratumia": paths})
    cache = tmp_path / "cache"
    table, _ = measure_studies(studies, "seg_deepbratumia", MeasureSettings(source="deepbratumia"), cache, workers=4)
    assert table["enhancing_mm3"].nunique() == 1 and table["enhancing_mm3"].notna().all()
    assert [p.name for p in cache.iterdir()] == [f"{cache_key(paths[0], MeasureSettings(source='deepbratumia'))}.npz"]
