"""The training recipe's settings (issue 19): class balancing, learning-rate schedule, model selection,
normalisation and stem geometry, and the LessThan3Months clinical input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from ranoflow.train import clinical, experiments, models
from ranoflow.train.fold import lr_schedule, step_schedule
from ranoflow.train.loop import Selection, train_loader, uses_sampler, uses_weighted_loss

KWARGS = {"init_features": 8, "growth_rate": 8, "block_config": [1, 1, 1, 1]}


def _training(**overrides) -> dict:
    return experiments.validated_section("training", overrides)


def test_default_recipe_balances_classes_once():
    settings = _training()
    assert settings["balance"] == "sampler"
    assert uses_sampler(settings) and not uses_weighted_loss(settings)
    modes = {mode: (uses_sampler(_training(balance=mode)), uses_weighted_loss(_training(balance=mode)))
             for mode in ("sampler", "loss", "both", "none")}
    assert modes == {"sampler": (True, False), "loss": (False, True), "both": (True, True), "none": (False, False)}


@pytest.mark.parametrize("balance, balanced_draws", [("sampler", True), ("both", True), ("loss", False), ("none", False)])
def test_balance_mode_decides_how_pairs_are_drawn(balance, balanced_draws):
    labels = [0] * 90 + [3] * 10
    data = [{"label": y} for y in labels]
    settings = {**_training(balance=balance, batch_size=100), "num_workers": 0}
    drawn = torch.cat([batch["label"] for batch in train_loader(data, labels, settings, seed=0)])
    share_rare = float((drawn == 3).float().mean())
    assert (0.35 < share_rare < 0.65) if balanced_draws else share_rare == pytest.approx(0.1)


def _lrs(settings: dict, losses: list[float]) -> list[float]:
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=settings["lr"])
    scheduler = lr_schedule(optimizer, settings)
    out = []
    for loss in losses:
        optimizer.step()
        step_schedule(scheduler, loss)
        out.append(optimizer.param_groups[0]["lr"])
    return out


def test_plateau_schedule_decays_before_early_stopping_would_stop():
    settings = _training(lr=1.0, plateau={"patience": 3}, early_stopping={"patience": 8})
    lrs = _lrs(settings, [1.0] * 8)  # a flat validation loss: no improvement after epoch 1
    assert lrs[0] == 1.0 and lrs[-1] < 1.0  # decayed within the 8 epochs early stopping allows


def test_plateau_patience_not_below_early_stopping_is_warned(caplog):
    _lrs(_training(lr=1.0, plateau={"patience": 10}, early_stopping={"patience": 8}), [1.0])
    assert "will not decay before the run stops" in caplog.text


def test_cosine_schedule_decays_every_epoch_to_min_lr():
    settings = _training(lr=1.0, schedule="cosine", max_epochs=10, plateau={"min_lr": 0.01})
    lrs = _lrs(settings, [1.0] * 10)
    assert all(a > b for a, b in zip(lrs, lrs[1:], strict=False))
    assert lrs[-1] == pytest.approx(0.01)


def _select(criterion: str, epochs: list[tuple[float, float]]) -> Selection:
    selection = Selection(0.0, criterion, window=3)
    model = nn.Linear(1, 1)
    for epoch, (ba, loss) in enumerate(epochs):
        selection.update(epoch, ba, loss, model)
    return selection


# one lucky epoch (index 1: BA 0.9 with a high loss) among steadily improving ones
EPOCHS = [(0.4, 1.2), (0.9, 1.5), (0.5, 1.0), (0.7, 0.8), (0.7, 0.7), (0.6, 0.75)]


def test_selection_by_balanced_accuracy_follows_the_lucky_epoch():
    assert _select("balanced_accuracy", EPOCHS).epoch == 1


def test_selection_by_validation_loss_picks_the_lowest_loss():
    selection = _select("val_loss", EPOCHS)
    assert selection.epoch == 4 and selection.bad_epochs == 1


def test_selection_by_smoothed_balanced_accuracy_picks_a_stable_epoch():
    # means of the last 3 epochs: 0.4, 0.65, 0.6, 0.7, 0.633, 0.667
    assert _select("smoothed_balanced_accuracy", EPOCHS).epoch == 3


def test_selection_state_survives_a_resume():
    first = _select("smoothed_balanced_accuracy", EPOCHS[:3])
    resumed = Selection(0.0, "smoothed_balanced_accuracy", 3)
    resumed.load_state_dict(first.state_dict())
    for epoch, (ba, loss) in enumerate(EPOCHS[3:], start=3):
        resumed.update(epoch, ba, loss, nn.Linear(1, 1))
    assert resumed.epoch == _select("smoothed_balanced_accuracy", EPOCHS).epoch


@pytest.mark.parametrize("norm, layer", [("instance", nn.InstanceNorm3d), ("group", nn.GroupNorm), ("batch", nn.BatchNorm3d)])
def test_norm_replaces_the_normalisation_layers(norm, layer):
    net, _ = models.build_backbone("densenet121", 2, [32] * 3, KWARGS, norm=norm, stem_pool=False)
    norms = [m for m in net.modules() if isinstance(m, (nn.InstanceNorm3d, nn.GroupNorm, nn.BatchNorm3d))]
    assert norms and all(isinstance(m, layer) for m in norms)
    net.train()
    assert net(torch.zeros(1, 2, 32, 32, 32)).shape[0] == 1  # batch of one: no batch statistics needed
    with pytest.raises(ValueError, match="training.norm"):
        models.build_backbone("vit", 2, [16] * 3, norm=norm)


def test_without_stem_pool_the_first_block_sees_twice_the_resolution():
    sizes = {}
    for stem_pool in (True, False):
        net, _ = models.build_backbone("densenet121", 1, [32] * 3, KWARGS, stem_pool=stem_pool)
        seen = []
        net.features.denseblock1.register_forward_hook(lambda m, i, o, seen=seen: seen.append(o.shape[-1]))
        net.eval()
        net(torch.zeros(1, 1, 32, 32, 32))
        sizes[stem_pool] = seen[0]
    assert sizes == {True: 8, False: 16}
    with pytest.raises(ValueError, match="stem_pool"):
        models.build_backbone("resnet10", 1, [32] * 3, stem_pool=False)


def test_less_than_3_months_is_a_clinical_flag_input():
    fields = experiments.clinical_fields(["less_than_3_months", "weeks_between"])
    assert fields == ["weeks_between", "less_than_3_months"]
    assert "less_than_3_months" in experiments.clinical_fields(True)
    assert clinical.feature_names(fields) == [
        "weeks_between", "weeks_between_missing", "less_than_3_months", "less_than_3_months_missing"]
    np.testing.assert_allclose(clinical.encode({"weeks_between": "26", "less_than_3_months": "1"}, fields),
                               [0.5, 0, 1, 0])
    np.testing.assert_allclose(clinical.encode({"weeks_between": "8", "less_than_3_months": ""}, fields),
                               [8 / 52, 0, 0, 1])


def _resolved(**training) -> dict:
    return {"architecture": "densenet121", "in_channels": 4, "references": ["previous"],
            "training": {**_training(image_size=[32, 32, 32], model_kwargs=KWARGS), **training}}


@pytest.mark.parametrize("encoder", ["joint", "shared"])
def test_channels_last_feeds_the_backbone_ndhwc_and_rates_the_same(encoder):
    torch.manual_seed(0)
    fast = models.model_for(_resolved(encoder=encoder), clinical_dim=0).eval()
    plain = models.model_for(_resolved(encoder=encoder, channels_last=False), clinical_dim=0).eval()
    plain.load_state_dict(fast.state_dict())
    assert _training()["channels_last"] and fast.channels_last and not plain.channels_last
    seen = []
    fast.backbone.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    image = torch.randn(3, 4, 32, 32, 32)
    with torch.no_grad():
        assert torch.allclose(fast(image), plain(image), atol=1e-5)
    assert seen[0].is_contiguous(memory_format=torch.channels_last_3d)
