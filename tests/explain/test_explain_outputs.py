"""Maps keep the atlas grid and affine, figures are written, score rows are complete."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from test_explain_core import SHAPE, RegionNet, region_mask

from ranoflow.explain.attribution import ExplainSettings
from ranoflow.explain.pair_maps import PairInput, Study, explain_pair

AFFINE = np.array([[-2.0, 0, 0, 90], [0, 2.0, 0, -120], [0, 0, 2.5, -70], [0, 0, 0, 1]])


def fake_study(directory: Path, seed: int) -> Study:
    directory.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    brain = np.zeros(SHAPE, dtype=np.uint8)
    brain[2:14, 2:14, 2:14] = 1
    for modality in ("T1", "FLAIR"):
        image = (rng.random(SHAPE) * brain).astype(np.float32)
        nib.Nifti1Image(image, AFFINE).to_filename(directory / f"{modality}.nii.gz")
    nib.Nifti1Image(brain, AFFINE).to_filename(directory / "brain_mask.nii.gz")
    seg = (region_mask().numpy() * 3).astype(np.uint8)  # edema label
    nib.Nifti1Image(seg, AFFINE).to_filename(directory / "tumour_seg.nii.gz")
    (directory / "status.json").write_text(json.dumps({"status": "ok", "anchor": "FLAIR"}))
    return Study(directory)


def test_explain_pair_writes_maps_on_the_atlas_grid(tmp_path: Path) -> None:
    current, previous = fake_study(tmp_path / "cur", 1), fake_study(tmp_path / "prev", 2)
    torch.manual_seed(3)
    image = torch.rand(1, 2, *SHAPE)
    inputs = PairInput(
        image=image, channels=["FLAIR current", "FLAIR previous"], groups=["current", "previous"],
        to_atlas=lambda frames: frames,
    )
    pair = {"id": "Patient-001_week-010_vs_week-005", "patient": "Patient-001", "label": "PD",
            "predicted": "CR", "selection": "wrong", "current": "week-010", "previous": "week-005"}
    settings = ExplainSettings(methods=("saliency", "gradcam"), layer="masked", targets=("predicted", "label"))
    out = tmp_path / "out"
    out.mkdir()
    studies = {"current": current, "previous": previous}
    rows = explain_pair(RegionNet(region_mask()), pair, inputs, studies, settings, out)

    assert {(r["method"], r["target"]) for r in rows} >= {("saliency", "predicted"), ("gradcam", "predicted")}
    for row in rows:
        image = nib.load(out / row["map"])
        assert np.allclose(image.affine, AFFINE)
        assert image.shape[:3] == SHAPE
        assert (out / row["figure"]).stat().st_size > 10_000
        all_zero = np.isnan(row["brain_share"])  # Grad-CAM's ReLU can leave nothing for a class
        assert all_zero or row["brain_share"] == pytest.approx(1.0)
    saliency = next(r for r in rows if r["method"] == "saliency")
    assert nib.load(out / saliency["map"]).shape == (*SHAPE, 3)  # two channels + sum
    assert saliency["frames"] == "FLAIR current,FLAIR previous,sum"
    assert saliency["tumour_share"] > 0.99 and saliency["pointing_hit"] == 1.0 and saliency["pointing"] == "hit"
    assert saliency["current_share"] + saliency["previous_share"] == pytest.approx(1.0)
    assert np.isclose(saliency["tumour_volume_share"], region_mask().sum().item() / 12**3)
    gradcam = next(r for r in rows if r["method"] == "gradcam")
    assert nib.load(out / gradcam["map"]).shape == SHAPE
    assert np.isnan(gradcam["current_share"])
    assert nib.load(out / saliency["map"]).header["descrip"].tobytes().startswith(b"frames: FLAIR current")


def test_study_anchor_falls_back_to_first_modality(tmp_path: Path) -> None:
    study = fake_study(tmp_path / "s", 0)
    (study.directory / "status.json").write_text(json.dumps({"anchor": "CT1"}))
    assert Path(study.anchor().get_filename()).name == "T1.nii.gz"
    (study.directory / "tumour_seg.nii.gz").unlink()
    assert study.tumour() is None


@pytest.mark.parametrize("fit", ["crop_pad", "resize"])
def test_pair_input_maps_back_onto_the_atlas_grid(tmp_path: Path, fit: str) -> None:
    import pandas as pd

    from ranoflow.explain.pair_maps import pair_input
    from ranoflow.train.experiments import channel_names
    from ranoflow.train.pair_items import pair_items
    from ranoflow.train.tensor_store import build_store, grid_geometry

    fake_study(tmp_path / "Patient-001" / "week-010", 1)
    fake_study(tmp_path / "Patient-001" / "week-005", 2)
    pairs = pd.DataFrame([{"id": "P1", "patient": "Patient-001", "current": "week-010", "previous": "week-005",
                           "label": "PD", "age": "50", "sex": "", "idh": "", "mgmt": "", "weeks_between": "5"}])
    manifest = pd.DataFrame(
        [{"patient": "Patient-001", "study": s, "status": "ok", "dir": str(tmp_path / "Patient-001" / s)}
         for s in ("week-010", "week-005")]
    )
    items, left_out = pair_items(pairs, manifest, ["P1"], ["T1", "FLAIR"], ["age"])
    assert left_out.empty
    resolved = {"modalities": ["T1", "FLAIR"], "input": "stack", "channels": channel_names(["T1", "FLAIR"], "stack"),
                "clinical": ["age"], "training": {"image_size": [8, 8, 8], "fit": fit, "pair_mask": "none"}}
    atlas_mask = tmp_path / "Patient-001" / "week-010" / "brain_mask.nii.gz"  # the studies' brain: the atlas's
    geometry = grid_geometry(atlas_mask, [8, 8, 8], fit, margin=0)
    store = build_store(manifest, geometry, tmp_path / "tensors")
    inputs = pair_input(items[0], resolved, store, geometry)
    assert inputs.image.shape == (1, 4, 8, 8, 8)
    assert inputs.groups == ["current", "current", "previous", "previous"]
    assert inputs.channels[0] == "T1 current" and inputs.extra[0].shape == (1, 2)
    back = inputs.to_atlas(inputs.image[0].numpy())
    assert back.shape == (4, *SHAPE)
    assert np.array_equal(inputs.to_atlas(inputs.image[0].numpy()), back)  # reusable: one map per method
    original = np.stack([nib.load(tmp_path / "Patient-001" / s / f"{m}.nii.gz").get_fdata()
                         for s in ("week-010", "week-005") for m in ("T1", "FLAIR")])
    outside = np.ones(SHAPE, dtype=bool)
    outside[2:14, 2:14, 2:14] = False
    assert np.abs(back[:, outside]).max() == 0
    if fit == "crop_pad":  # the brain box (12 voxels) centre-cropped to 8: voxels 4..11 come back unchanged
        # (float16 in the store)
        assert np.allclose(back[:, 4:12, 4:12, 4:12], original[:, 4:12, 4:12, 4:12], rtol=2e-3, atol=2e-3)
        assert np.abs(back[:, 2:4]).max() == 0
    else:  # resized down and up again: blurred but in place
        assert np.corrcoef(back[:, ~outside].ravel(), original[:, ~outside].ravel())[0, 1] > 0.2


def test_explain_pair_with_two_references_scores_against_every_study(tmp_path: Path) -> None:
    studies = {side: fake_study(tmp_path / side, seed) for seed, side in enumerate(("current", "previous", "nadir"))}
    cleared = np.zeros(SHAPE, dtype=np.uint8)  # a CR pair: no tumour left in the current study
    nib.Nifti1Image(cleared, AFFINE).to_filename(studies["current"].directory / "tumour_seg.nii.gz")
    torch.manual_seed(3)
    inputs = PairInput(
        image=torch.rand(1, 3, *SHAPE), channels=["FLAIR current", "FLAIR previous", "FLAIR nadir"],
        groups=["current", "previous", "nadir"], to_atlas=lambda frames: frames,
    )
    pair = {"id": "Patient-001_week-030_vs_week-020", "patient": "Patient-001", "label": "CR", "predicted": "CR",
            "selection": "correct", "current": "week-030", "previous": "week-020", "nadir": "week-010"}
    out = tmp_path / "out"
    out.mkdir()
    rows = explain_pair(RegionNet(region_mask(), in_channels=3), pair, inputs, studies,
                        ExplainSettings(methods=("saliency",)), out)
    row = rows[0]
    assert row["current_share"] + row["previous_share"] + row["nadir_share"] == pytest.approx(1.0)
    assert row["pointing"] == "hit" and row["tumour_share"] > 0.99  # the references' tumour counts
    assert nib.load(out / row["map"]).shape == (*SHAPE, 4)


def test_channel_groups_name_each_reference() -> None:
    from ranoflow.explain.pair_maps import channel_groups
    from ranoflow.train.experiments import channel_names

    stacked = channel_names(["T1"], "stack", ["previous", "nadir"])
    assert channel_groups(stacked) == ["current", "previous", "nadir"]
    assert channel_groups(channel_names(["T1"], "subtract", ["baseline", "nadir"])) == ["difference"] * 2
