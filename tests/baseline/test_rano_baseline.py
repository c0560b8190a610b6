"""The rule-based RANO 2.0 baseline: measurements of enhancing tumour, the response criteria, scoring on folds."""

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from ranoflow import segmentation as segmentation_io
from ranoflow.baseline import criteria, measurements, scoring
from ranoflow.baseline.criteria import RuleSettings
from ranoflow.baseline.study_measures import LesionPoints, MeasureSettings, measure_studies
from ranoflow.evaluate.summary_table import summary_row
from ranoflow.segmentation import Segmentation

SPACING = (2.0, 2.0, 2.0)  # 8 mm³ voxels
AFFINE = np.diag([*SPACING, 1.0])


def box_segmentation(*boxes: tuple[slice, slice, slice], shape=(40, 40, 40), label: int = 1) -> np.ndarray:
    labels = np.zeros(shape, dtype=np.uint8)
    for box in boxes:
        labels[box] = label
    return labels


def segmentation(labels: np.ndarray, source: str = "synthetic", affine=AFFINE) -> Segmentation:
    return Segmentation(segmentation_io.enhancing_mask(labels, source), affine)


def cube(n_voxels_edge: int, start: int = 5) -> tuple[slice, slice, slice]:
    return (slice(start, start + n_voxels_edge),) * 3


def slab(n_voxels: int, start: int = 5) -> tuple[slice, slice, slice]:
    """A 10x10xk block: volume 100 * k voxels, so percentages are exact."""
    return (slice(start, start + 10), slice(start, start + 10), slice(start, start + n_voxels // 100))


def assess(previous_voxels: int, current_voxels: int, **settings) -> criteria.Assessment:
    previous = segmentation(box_segmentation(slab(previous_voxels)))
    current = segmentation(box_segmentation(slab(current_voxels)))
    return criteria.assess_pair(previous, current, RuleSettings(**settings))


def test_volume_of_known_box():
    seg = segmentation(box_segmentation(cube(5)))
    assert segmentation_io.volume_mm3(seg.enhancing, seg.zooms) == pytest.approx(125 * 8.0)


@pytest.mark.parametrize(
    "previous, current, expected",
    [
        (2000, 0, "CR"),
        (2000, 700, "PR"),  # exactly -65 %
        (2000, 800, "SD"),  # -60 %
        (2000, 2000, "SD"),
        (2000, 2700, "SD"),  # +35 %
        (2000, 2800, "PD"),  # exactly +40 %
        (2000, 3000, "PD"),
    ],
)
def test_volumetric_classes_and_threshold_edges(previous, current, expected):
    result = assess(previous, current)
    assert result.predicted == expected
    assert result.volume_previous_mm3 == pytest.approx(previous * 8.0)
    assert result.volume_current_mm3 == pytest.approx(current * 8.0)


def test_edges_of_classify_directly():
    volumetric = criteria.VOLUMETRIC
    assert criteria.classify(10000.0, 3500.0, volumetric, enhancing_gone=False) == "PR"
    assert criteria.classify(10000.0, 3510.0, volumetric, enhancing_gone=False) == "SD"
    assert criteria.classify(10000.0, 13990.0, volumetric, enhancing_gone=False) == "SD"
    assert criteria.classify(10000.0, 14000.0, volumetric, enhancing_gone=False) == "PD"
    assert criteria.classify(0.0, 0.0, volumetric, enhancing_gone=True) == "CR"
    # from nothing, only a measurable tumour (RANO 2.0: 1 cm³) is progression, not a few noise voxels
    assert criteria.classify(0.0, 5.0, volumetric, enhancing_gone=False) == "SD"
    assert criteria.classify(0.0, 1000.0, volumetric, enhancing_gone=False) == "PD"


def test_cr_tolerates_residual_below_threshold():
    assert assess(2000, 100, cr_max_volume_mm3=1000.0).predicted == "CR"
    assert assess(2000, 100, cr_max_volume_mm3=0.0).predicted == "PR"


def test_new_distant_lesion_is_pd_even_when_volume_shrinks():
    previous = segmentation(box_segmentation(slab(2000)))
    # Same lesion shrunk by 20 % plus a small lesion 40 mm away: SD by volume, PD by the new lesion.
    current_labels = box_segmentation(slab(1500), cube(2, start=30))
    current = segmentation(current_labels)
    settings = RuleSettings(new_lesion_margin_mm=10.0, new_lesion_min_volume_mm3=0.0)
    result = criteria.assess_pair(previous, current, settings)
    assert result.new_lesions == 1
    assert result.predicted == "PD"
    without = criteria.assess_pair(previous, current, RuleSettings(new_lesion=False))
    assert without.new_lesions == 0 and without.predicted == "SD"
    too_small = criteria.assess_pair(previous, current, RuleSettings())  # 64 mm³ < default 100 mm³
    assert too_small.new_lesions == 0


def test_nearby_component_is_not_new():
    previous = segmentation(box_segmentation(slab(2000)))
    # A satellite about 8.5 mm from the old lesion stays within a 10 mm margin, not a 2 mm one.
    current = segmentation(box_segmentation(slab(2000), cube(2, start=17)))
    assert measurements.count_new_lesions(previous, current, margin_mm=10.0, min_volume_mm3=0.0) == 0
    assert measurements.count_new_lesions(previous, current, margin_mm=2.0, min_volume_mm3=0.0) == 1


def test_new_lesion_uses_world_coordinates():
    labels = box_segmentation(cube(4, start=5))
    previous = segmentation(labels)
    # The current grid is shifted by 20 voxels (40 mm): the same voxel indices lie elsewhere in the head.
    shifted = AFFINE.copy()
    shifted[:3, 3] = 40.0
    current = segmentation(labels, affine=shifted)
    assert measurements.count_new_lesions(previous, current, 10.0, 0.0) == 1
    assert measurements.count_new_lesions(previous, segmentation(labels), 10.0, 0.0) == 0


def test_label_handling_per_source():
    labels = np.zeros((6, 6, 6), dtype=np.uint8)
    labels[0, 0, :2] = 1
    labels[1, 1, :3] = 2
    labels[2, 2, :4] = 3
    assert segmentation_io.enhancing_mask(labels, "deepbratumia").sum() == 2  # DeepBraTumIA: 1 enhancing core
    assert segmentation_io.enhancing_mask(labels, "synthetic").sum() == 2  # the demo generator writes the same
    assert segmentation_io.enhancing_mask(labels, "hdglio").sum() == 3
    with pytest.raises(ValueError):
        segmentation_io.enhancing_mask(labels, "unknown")


def test_hdglio_and_deepbratumia_maps_of_one_tumour_agree(tmp_path):
    enhancing = box_segmentation(slab(2000))
    around = box_segmentation((slice(3, 17), slice(3, 17), slice(3, 29))) & ~enhancing.astype(bool)
    dbt = enhancing * 1 + around * 3  # LUMIERE's DeepBraTumIA: 1 enhancing, 2 necrosis, 3 edema
    hdglio = enhancing * 2 + around * 1  # HD-GLIO-AUTO: 2 enhancing, 1 non-enhancing abnormality
    volumes = {}
    for source, labels in (("deepbratumia", dbt), ("hdglio", hdglio)):
        path = tmp_path / f"{source}.nii.gz"
        nib.save(nib.Nifti1Image(labels.astype(np.uint8), AFFINE), path)
        seg = segmentation_io.load_segmentation(path, source)
        volumes[source] = segmentation_io.volume_mm3(seg.enhancing, seg.zooms)
    assert volumes["deepbratumia"] == volumes["hdglio"] == pytest.approx(2000 * 8.0)
    # Reading DeepBraTumIA's labels with HD-GLIO's numbers would take the edema's label 3 for nothing
    # and miss the enhancing core (label 1 is HD-GLIO's non-enhancing abnormality).
    wrong = segmentation_io.load_segmentation(tmp_path / "deepbratumia.nii.gz", "hdglio")
    assert segmentation_io.volume_mm3(wrong.enhancing, wrong.zooms) != volumes["hdglio"]


def test_measured_volumes_json(tmp_path):
    path = tmp_path / "measured_volumes_in_mm3.json"
    path.write_text(json.dumps({"Enhancing_Core": 1234.5, "Necrotic_NonEnhancing": 10.0, "Edema_Compartment": 99.0}))
    assert segmentation_io.measured_enhancing_volume(path) == 1234.5


def test_perpendicular_diameters_of_rectangle():
    region = np.zeros((30, 30), dtype=bool)
    region[2:12, 2:7] = True  # 10 x 5 pixels of 2 mm: 20 mm x 10 mm
    longest, perpendicular = measurements.perpendicular_diameters(region, (2.0, 2.0))
    assert longest == pytest.approx(np.hypot(20.0, 10.0))  # the diagonal is the longest chord
    # Perpendicular extent of a rectangle across its diagonal: 2 * area / diagonal.
    assert perpendicular == pytest.approx(2 * 200.0 / np.hypot(20.0, 10.0))


def test_bidimensional_product_and_measurability():
    # A 10x10 voxel (20 mm x 20 mm) square prism along the axial axis (z, RAS affine).
    labels = box_segmentation((slice(5, 15), slice(5, 15), slice(5, 8)))
    seg = segmentation(labels)
    diagonal = np.hypot(20.0, 20.0)
    assert measurements.bidimensional_product(seg) == pytest.approx(diagonal * diagonal)
    # A 4 mm thin lesion is not measurable (< 10 mm in one diameter).
    thin = segmentation(box_segmentation((slice(5, 15), slice(5, 7), slice(5, 8))))
    assert measurements.bidimensional_product(thin) == 0.0
    assert measurements.bidimensional_product(thin, min_diameter_mm=2.0) > 0.0


def test_bidimensional_thresholds():
    square = lambda n: box_segmentation((slice(5, 5 + n), slice(5, 5 + n), slice(5, 8)))  # noqa: E731
    settings = RuleSettings(method="bidimensional", new_lesion=False)
    big, small = segmentation(square(14)), segmentation(square(10))
    # Product scales with n²: 10²/14² = 0.51 -> -49 %: SD by bidimensional criteria (PR needs -50 %).
    result = criteria.assess_pair(big, small, settings)
    assert result.change == pytest.approx(100 / 196 - 1, abs=1e-6)
    assert result.predicted == "SD"
    assert criteria.assess_pair(segmentation(square(15)), small, settings).predicted == "PR"
    # 10 -> 12: +44 % is PD bidimensionally (>= 25 %) and volumetrically (>= 40 %).
    assert criteria.assess_pair(small, segmentation(square(12)), settings).predicted == "PD"
    # 10 -> 11: +21 % product is SD, volume +21 % is SD as well.
    assert criteria.assess_pair(small, segmentation(square(11)), settings).predicted == "SD"


def test_axial_axis_follows_orientation():
    assert measurements.axial_axis(AFFINE) == 2
    las_to_sagittal_stack = np.array([[0, 0, 2, 0], [0, 2, 0, 0], [2, 0, 0, 0], [0, 0, 0, 1.0]])
    assert measurements.axial_axis(las_to_sagittal_stack) == 0


def test_pairs_are_scored_on_test_folds_and_missing_segmentations_listed(tmp_path):
    voxels = {"week-001": 2000, "week-010": 2000, "week-020": 3000, "week-030": 500}
    studies = []
    for study, n in voxels.items():
        path = tmp_path / f"{study}.nii.gz"
        nib.save(nib.Nifti1Image(box_segmentation(slab(n)), AFFINE), path)
        studies.append({"patient": "Patient-001", "study": study, "seg_deepbratumia": str(path), "seg_hdglio": ""})
    studies.append({"patient": "Patient-001", "study": "week-040", "seg_deepbratumia": "", "seg_hdglio": ""})
    studies = pd.DataFrame(studies)
    chain = ["week-001", "week-010", "week-020", "week-030", "week-040"]
    labels = ["SD", "PD", "PR", "PD"]
    pairs = pd.DataFrame(
        {
            "id": [f"Patient-001_{c}_vs_{p}" for p, c in zip(chain, chain[1:])],
            "patient": "Patient-001",
            "current": chain[1:],
            "previous": chain[:-1],
            "label": labels,
        }
    )
    folds = {"protocol": "patient", "folds": [{"fold": 0, "test": list(pairs["id"][:2])},
                                              {"fold": 1, "test": list(pairs["id"][2:])}]}
    settings = RuleSettings(source="synthetic")
    measures, lesions = measured(studies, tmp_path)
    assessed, missing = scoring.predict_pairs(pairs, measures, lesions, settings, reference="previous")
    assert list(assessed["predicted"]) == ["SD", "PD", "PR"]
    assert list(missing["id"]) == ["Patient-001_week-040_vs_week-030"]
    assert "current study week-040 has no segmentation" in missing["reason"].iloc[0]

    predictions = scoring.scored_predictions(pairs, assessed, folds, missing_prediction="SD")
    assert list(predictions["fold"]) == [0, 0, 1, 1]
    assert list(predictions["segmentation"]) == ["ok", "ok", "ok", "missing"]
    assert predictions.loc[3, "predicted"] == "SD" and predictions.loc[3, "prob_SD"] == 1.0
    metrics = scoring.score(predictions, folds, settings, "SD", bootstrap=10)
    assert [fold["balanced_accuracy"] for fold in metrics["folds"]] == [1.0, 0.5]  # fold 1: PD answered SD
    assert metrics["median_balanced_accuracy"] == 0.75
    assert metrics["n_missing_segmentation"] == 1
    assert [fold["n_missing_segmentation"] for fold in metrics["folds"]] == [0, 1]
    assert summary_row(metrics)["median_balanced_accuracy"] == 0.75  # fits the summary table

    excluded = scoring.scored_predictions(pairs, assessed, folds, missing_prediction="exclude")
    assert scoring.score(excluded, folds, settings, "exclude", bootstrap=10)["folds"][1]["balanced_accuracy"] == 1.0


def measured(studies: pd.DataFrame, tmp_path, **settings) -> tuple[pd.DataFrame, LesionPoints]:
    """study_measures.tsv and the lesion points of the studies, as the study_measures rule writes them."""
    table, arrays = measure_studies(
        studies, "seg_deepbratumia", MeasureSettings(source="synthetic", **settings), tmp_path / "cache"
    )
    return table, LesionPoints(arrays)


def history_pairs(tmp_path, voxels: dict[str, int], labels: list[str], flagged: tuple[str, ...] = ()):
    """One patient: Post-Op at the first study (the baseline), then one pair per later study, each carrying
    its previous study, baseline and nadir (the smallest earlier volume since baseline, the latest on ties)."""
    studies = []
    for study, n in voxels.items():
        path = tmp_path / f"{study}.nii.gz"
        nib.save(nib.Nifti1Image(box_segmentation(slab(n)) if n else box_segmentation(), AFFINE), path)
        studies.append({"patient": "Patient-001", "study": study, "seg_deepbratumia": str(path), "seg_hdglio": ""})
    chain = list(voxels)
    rows = []
    for k, current in enumerate(chain[1:], start=1):
        nadir = min(reversed(chain[:k]), key=voxels.get)
        rows.append({
            "id": f"Patient-001_{current}_vs_{chain[k - 1]}", "patient": "Patient-001", "current": current,
            "previous": chain[k - 1], "label": labels[k - 1], "reference": chain[k - 1], "baseline": chain[0],
            "nadir": nadir, "less_than_3_months": str(int(current in flagged)),
        })  # fmt: skip
    studies = pd.DataFrame(studies)
    return pd.DataFrame(rows), studies, *measured(studies, tmp_path)


def predicted(tmp_path, voxels, labels, reference, flagged=(), **settings) -> list[str]:
    pairs, _, measures, lesions = history_pairs(tmp_path, voxels, labels, flagged)
    assessed, missing = scoring.predict_pairs(
        pairs, measures, lesions, RuleSettings(source="synthetic", **settings), reference
    )
    assert missing.empty
    return list(assessed.set_index("current").loc[pairs["current"], "predicted"])


def test_maintained_response_is_pr_against_the_baseline(tmp_path):
    voxels = {"week-002": 3000, "week-010": 900, "week-020": 950, "week-030": 900}  # -70 %, then stable
    labels = ["PR", "PR", "PR"]
    assert predicted(tmp_path, voxels, labels, "history") == labels
    assert predicted(tmp_path, voxels, labels, "previous") == ["PR", "SD", "SD"]


def test_cumulative_growth_is_pd_at_the_second_visit(tmp_path):
    voxels = {"week-002": 2000, "week-010": 2400, "week-020": 2900}  # +20 %, +21 %: +45 % from the nadir
    assert predicted(tmp_path, voxels, ["SD", "PD"], "history") == ["SD", "PD"]
    assert predicted(tmp_path, voxels, ["SD", "PD"], "previous") == ["SD", "SD"]


def test_growth_from_a_nadir_below_the_previous_scan(tmp_path):
    # shrinks to a nadir at week-010, grows 25 % (SD), then 15 % more: +44 % from the nadir
    voxels = {"week-002": 3000, "week-010": 2000, "week-020": 2500, "week-030": 2900}
    labels = ["SD", "SD", "PD"]
    assert predicted(tmp_path, voxels, labels, "history") == labels
    assert predicted(tmp_path, voxels, labels, "previous") == ["SD", "SD", "SD"]


def test_noise_after_complete_response_is_not_progression(tmp_path):
    # 200 voxels = 1.6 cm³, gone at week-020, then 100 voxels (0.8 cm³ < 1 cm³), then 200 (1.6 cm³)
    voxels = {"week-002": 200, "week-010": 200, "week-020": 0, "week-030": 100, "week-040": 200}
    labels = ["SD", "CR", "SD", "PD"]
    assert predicted(tmp_path, voxels, labels, "history", new_lesion=False) == labels
    assert predicted(tmp_path, voxels, labels, "history", new_lesion=False, min_measurable_mm3=0.0)[2] == "PD"


def test_growth_within_12_weeks_is_pseudo_progression(tmp_path):
    voxels = {"week-002": 2000, "week-008": 4000, "week-020": 2100}
    labels = ["SD", "SD"]
    assert predicted(tmp_path, voxels, labels, "history", flagged=("week-008",)) == ["SD", "SD"]
    as_any = predicted(tmp_path, voxels, labels, "history", flagged=("week-008",), less_than_3_months="as_any")
    assert as_any == ["PD", "SD"]
