"""Attribution maps, overlap scores and pair selection on a network whose answer is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from ranoflow.explain.attribution import (
    ExplainSettings,
    attribute,
    default_layer_name,
    predict_proba,
    resolve_layer,
)
from ranoflow.explain.overlap import group_share, overlap_scores, tumour_mask
from ranoflow.explain.selection import explanation_targets, select_pairs

SHAPE = (16, 16, 16)


def region_mask() -> torch.Tensor:
    mask = torch.zeros(SHAPE)
    mask[4:10, 6:10, 4:10] = 1  # even bounds: 2-voxel occlusion patches align
    return mask


class Mask(nn.Module):
    def __init__(self, mask: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mask", mask[None, None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.mask


class RegionNet(nn.Module):
    """Four logits computed only from the voxels inside one box (1×1×1 convolutions, so nothing leaks)."""

    def __init__(self, mask: torch.Tensor, in_channels: int = 2) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv3d(in_channels, 6, kernel_size=1)
        self.masked = Mask(mask)
        self.head = nn.Linear(6, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.masked(torch.tanh(self.conv(x)))
        return self.head(features.sum(dim=(2, 3, 4)) / 100)


@pytest.fixture
def net_and_input() -> tuple[RegionNet, torch.Tensor]:
    torch.manual_seed(1)
    return RegionNet(region_mask()), torch.rand(1, 2, *SHAPE)


@pytest.mark.parametrize("method", ["saliency", "integrated_gradients", "occlusion"])
def test_per_channel_methods_concentrate_on_the_region(method, net_and_input) -> None:
    net, image = net_and_input
    settings = ExplainSettings(methods=(method,), ig_steps=8, occlusion_window=2, occlusion_stride=2)
    target = int(np.argmax(predict_proba(net, image)))
    attr = attribute(net, image, target, method, settings)
    assert attr.shape == (2, *SHAPE)
    tumour = region_mask().numpy().astype(bool)
    brain = np.ones(SHAPE, dtype=bool)
    scores = overlap_scores(attr.sum(axis=0), brain=brain, tumour=tumour)
    assert scores.tumour_share > 0.99
    assert scores.brain_share == pytest.approx(1.0)
    assert scores.pointing_hit == 1.0
    assert scores.tumour_volume_share == pytest.approx(tumour.sum() / tumour.size)


def test_gradcam_on_masked_layer_is_upsampled_and_concentrates(net_and_input) -> None:
    net, image = net_and_input
    attr = attribute(net, image, 0, "gradcam", ExplainSettings(layer="masked"))
    assert attr.shape == (1, *SHAPE)
    assert (attr >= 0).all()
    scores = overlap_scores(attr[0], brain=None, tumour=region_mask().numpy() > 0)
    assert scores.tumour_share > 0.95 or attr.sum() == 0  # ReLU may zero a class with only negative evidence
    assert np.isnan(scores.brain_share)


def test_default_layer_is_the_last_dense_block() -> None:
    from monai.networks.nets import DenseNet

    net = DenseNet(spatial_dims=3, in_channels=2, out_channels=4, init_features=4, growth_rate=4,
                   block_config=(1, 1, 1))
    assert default_layer_name(net) == "features.denseblock3"
    attr = attribute(net, torch.rand(1, 2, 24, 24, 24), 1, "gradcam", ExplainSettings())
    assert attr.shape == (1, 24, 24, 24)
    assert default_layer_name(RegionNet(region_mask())) == "conv"
    with pytest.raises(KeyError, match="nope"):
        resolve_layer(net, "nope")


def test_overlap_scores_by_hand() -> None:
    attr = np.zeros((4, 4, 4))
    attr[0, 0, 0] = 3.0
    attr[1, 1, 1] = -1.0  # counted by magnitude
    tumour = np.zeros((4, 4, 4), dtype=bool)
    tumour[1, 1, 1] = True
    brain = np.zeros((4, 4, 4), dtype=bool)
    brain[:2, :2, :2] = True
    scores = overlap_scores(attr, brain=brain, tumour=tumour)
    assert scores.tumour_share == pytest.approx(0.25)
    assert scores.brain_share == pytest.approx(1.0)
    assert scores.pointing_hit == 0.0
    assert scores.peak_voxel == (0, 0, 0)
    assert scores.tumour_volume_share == pytest.approx(1 / 8)
    assert np.isnan(overlap_scores(attr, brain=brain, tumour=None).tumour_share)
    assert tumour_mask(np.array([0, 1, 2, 3, 4])).tolist() == [False, True, True, True, False]
    channels = np.stack([attr, 3 * attr])
    assert group_share(channels, ["current", "previous"], "current") == pytest.approx(0.25)


def test_select_pairs_takes_confident_correct_and_wrong_per_class() -> None:
    rows = [
        ("a", "CR", "CR", [0.9, 0.05, 0.03, 0.02]),
        ("b", "CR", "CR", [0.6, 0.2, 0.1, 0.1]),
        ("c", "CR", "PD", [0.1, 0.1, 0.1, 0.7]),
        ("d", "PD", "PD", [0.1, 0.1, 0.1, 0.7]),
        ("e", "SD", "PR", [0.1, 0.5, 0.3, 0.1]),
        ("f", "SD", "PD", [0.1, 0.1, 0.2, 0.6]),
    ]
    predictions = pd.DataFrame(
        [(i, "Patient-001", l, p, *probs) for i, l, p, probs in rows],
        columns=["id", "patient", "label", "predicted", "prob_CR", "prob_PR", "prob_SD", "prob_PD"],
    )
    chosen = select_pairs(predictions, n_per_class=1)
    assert list(zip(chosen["id"], chosen["selection"])) == [
        ("a", "correct"), ("c", "wrong"), ("f", "wrong"), ("d", "correct"),
    ]
    assert len(select_pairs(predictions, n_per_class=2)) == 6
    assert select_pairs(predictions.head(0), 1).empty


def test_targets_and_settings() -> None:
    assert explanation_targets("CR", "PD", ["predicted", "label"]) == [("predicted", "PD"), ("label", "CR")]
    assert explanation_targets("CR", "CR", ["predicted", "label"]) == [("predicted", "CR")]
    settings = ExplainSettings.from_config({"methods": ["saliency"], "occlusion": {"window": 4}})
    assert settings.methods == ("saliency",) and settings.occlusion_window == 4
    with pytest.raises(ValueError, match="bogus"):
        ExplainSettings(methods=("bogus",))


def test_tied_maxima_resolve_to_the_one_nearest_the_centre_of_mass() -> None:
    from ranoflow.explain.overlap import peak_voxel

    flat = np.zeros((9, 9, 9))
    flat[2:7, 2:7, 2:7] = 1.0
    assert peak_voxel(flat) == (4, 4, 4)
    single = np.zeros((3, 3, 3))
    single[0, 2, 1] = 5
    assert peak_voxel(single) == (0, 2, 1)


def test_pointing_game_peak_is_searched_inside_the_brain() -> None:
    attr = np.zeros((6, 6, 6))
    attr[0, 0, 0] = 10.0  # the map's maximum lies outside the brain (e.g. Grad-CAM at the crop border)
    attr[3, 3, 3] = 2.0
    brain = np.zeros((6, 6, 6), dtype=bool)
    brain[1:5, 1:5, 1:5] = True
    tumour = np.zeros((6, 6, 6), dtype=bool)
    tumour[3, 3, 3] = True
    scores = overlap_scores(attr, brain=brain, tumour=tumour)
    assert scores.peak_voxel == (3, 3, 3)
    assert scores.pointing_hit == 1.0 and scores.pointing == "hit"
    assert scores.brain_share == pytest.approx(2 / 12)


def test_pairs_without_tumour_in_any_study_are_not_applicable() -> None:
    from ranoflow.explain.overlap import union_mask

    attr = np.zeros((4, 4, 4))
    attr[1, 1, 1] = 1.0
    brain = np.ones((4, 4, 4), dtype=bool)
    nothing = np.zeros((4, 4, 4), dtype=bool)
    empty = overlap_scores(attr, brain=brain, tumour=union_mask([nothing, nothing]))
    assert empty.pointing == "not applicable" and np.isnan(empty.pointing_hit) and np.isnan(empty.tumour_share)
    # a CR pair: no tumour now, but the previous study's tumour still counts (the union of both masks)
    previous = nothing.copy()
    previous[1, 1, 1] = True
    cr = overlap_scores(attr, brain=brain, tumour=union_mask([nothing, previous]))
    assert cr.pointing == "hit" and cr.tumour_share == pytest.approx(1.0)
    assert union_mask([nothing, None]) is None  # a study without segmentation: no fair union


def test_explanation_summary_leaves_not_applicable_pairs_out_of_the_hit_rate() -> None:
    from ranoflow.explain.summary import summarise

    scores = pd.DataFrame({
        "experiment": "e", "fold": 0, "pair": ["p1", "p2", "p3"], "label": ["PD", "PD", "CR"],
        "predicted": "PD", "correct": [1, 1, 0], "method": "saliency", "target": "predicted",
        "tumour_share": [0.5, 0.2, np.nan], "brain_share": 1.0, "pointing_hit": [1.0, 0.0, np.nan],
        "pointing": ["hit", "miss", "not applicable"], "tumour_volume_share": 0.1, "current_share": 0.5,
    })
    overall = summarise(scores).query("level == 'aggregate' and label == 'all'").iloc[0]
    assert overall["n"] == 3 and overall["n_pointing"] == 2 and overall["pointing_hit"] == pytest.approx(0.5)
