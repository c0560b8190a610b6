"""The shared-encoder recipe: one backbone per study, each study's tumour volume as an auxiliary target
(training.volume_loss), and the concept-bottleneck head that rates from those volumes (training.head)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from train_helpers import make_dataset, make_store

from ranoflow.explain.attribution import ExplainSettings, attribute
from ranoflow.predict.export import export_ensemble, model_card
from ranoflow.train import datasets, experiments, models, pair_items, transforms
from ranoflow.train.fold import train_fold
from ranoflow.vocabulary import CLASSES

TINY = {"init_features": 4, "growth_rate": 4, "block_config": [1, 1]}
RECIPE = {"encoder": "shared", "volume_loss": 1.0, "head": "volumes"}


def _resolved(references=("previous",), training=None, **extra) -> dict:
    spec = {"modalities": ["CT1", "FLAIR"], "input": "stack", "references": list(references),
            "architecture": "densenet121", "training": {**RECIPE, **(training or {})}, **extra}
    return experiments.resolve_experiment("e", {"e": spec}, {"image_size": [8, 8, 8], "model_kwargs": TINY})


def test_one_backbone_reads_each_study_and_the_head_sees_the_current_study_and_its_differences():
    resolved = _resolved(["baseline", "nadir"], {"head": "features"})
    model = models.model_for(resolved, 0).eval()
    assert isinstance(model, models.SharedEncoderClassifier) and resolved["in_channels"] == 6
    first = next(m for m in model.backbone.modules() if isinstance(m, torch.nn.Conv3d))
    assert first.in_channels == 2  # one study's modalities
    image = torch.randn(2, 6, 8, 8, 8)
    with torch.no_grad():
        per_study = [model.backbone(image[:, 2 * s: 2 * s + 2]) for s in range(3)]
        expected = torch.cat([per_study[0], per_study[0] - per_study[1], per_study[0] - per_study[2]], dim=1)
        torch.testing.assert_close(model.features(image), expected)
        assert model(image).shape == (2, len(CLASSES))
    assert model.last_volumes is None  # estimates are kept for the training loss only
    model.train()
    model(image)
    assert model.last_volumes.shape == (2, 3)


def test_the_volume_head_rates_from_the_volume_estimates_alone():
    model = models.model_for(_resolved(["baseline", "nadir"]), 0).eval()
    assert model.head[0].in_features == 5  # 3 volumes and 2 differences to the current one
    estimates = torch.tensor([[1.0, 2.0, 0.5]])
    model.volume = torch.nn.Module()
    model.volume.forward = lambda feats: estimates.expand(feats.shape[0], 3)[..., None]
    with torch.no_grad():
        a, b = model(torch.randn(1, 6, 8, 8, 8)), model(torch.zeros(1, 6, 8, 8, 8))
        torch.testing.assert_close(model.features(torch.zeros(1, 6, 8, 8, 8)),
                                   torch.tensor([[1.0, 2.0, 0.5, -1.0, 0.5]]))
    torch.testing.assert_close(a, b)  # images differing everywhere, the same volume estimates: the same rating


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"input": "subtract"}, "encoder shared .* needs input: stack"),
        ({"training": {"encoder": "joint", "head": "features"}}, "volume_loss .* needs training.encoder: shared"),
        ({"training": {"volume_loss": 0.0}}, "head volumes .* needs training.volume_loss above 0"),
        ({"training": {"encoder": "siamese"}}, "encoder"),
    ],
)
def test_recipe_settings_that_do_not_fit_are_refused_naming_the_experiment(spec, message):
    base = {"modalities": ["CT1"], "input": "stack", "architecture": "densenet121"}
    entry = {**base, **spec, "training": {**RECIPE, **spec.get("training", {})}}
    with pytest.raises(ValueError, match=f"experiment 'e'.*{message}"):
        experiments.resolve_experiment("e", {"e": entry}, {"image_size": [8, 8, 8]})


def _volumes(manifest: pd.DataFrame) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    table = manifest[["patient", "study"]].copy()
    table["enhancing_mm3"] = rng.uniform(0, 30_000, len(table)).round(1)
    return table


def test_volume_targets_reach_the_batches_and_the_checkpoint_key(tmp_path):
    paths = make_dataset(tmp_path, n_patients=2, pairs_per_patient=1, shape=(12, 12, 12), k=2)
    pairs = pd.read_csv(paths["pairs"], sep="\t", dtype=str, keep_default_na=False)
    manifest = pd.read_csv(paths["manifest"], sep="\t", dtype=str, keep_default_na=False)
    volumes = _volumes(manifest)
    items, _ = pair_items.pair_items(pairs, manifest, pairs["id"].tolist(), ["T1"], [], True, ["previous"])
    key = datasets.content_fingerprint({"train": items})
    first = items[0]
    volumes.loc[(volumes.patient == first["patient"]) & (volumes.study == first["current_study"]), "enhancing_mm3"] = np.nan
    datasets.add_volumes(items, volumes, ["previous"])
    previous = volumes.set_index(["patient", "study"]).loc[(first["patient"], first["previous_study"]), "enhancing_mm3"]
    store = make_store(paths, [8, 8, 8])
    batch = datasets.StoreDataset(items, store, ["T1"], ["previous"], [8, 8, 8], True).__getitems__([0, 1])
    assert batch["volumes"].shape == (2, 2)
    assert torch.isnan(batch["volumes"][0, 0]).item()  # no segmentation: no target, not a volume of 0
    assert batch["volumes"][0, 1].item() == pytest.approx(np.log1p(previous / 1000), rel=1e-5)
    assert datasets.content_fingerprint({"train": items}) != key  # a changed segmentation retrains


def test_a_fold_trains_with_the_volume_loss_and_needs_the_volumes(tmp_path):
    paths = make_dataset(tmp_path, n_patients=8, pairs_per_patient=2, shape=(12, 12, 12))
    pairs = pd.read_csv(paths["pairs"], sep="\t", dtype=str, keep_default_na=False)
    manifest = pd.read_csv(paths["manifest"], sep="\t", dtype=str, keep_default_na=False)
    folds = json.loads(paths["folds"].read_text())
    spec = {"modalities": ["T1"], "input": "stack", "architecture": "densenet121",
            "training": {**RECIPE, "max_epochs": 2, "schedule": "cosine"}}
    experiment = experiments.resolve_experiment("e", {"e": spec}, {"image_size": [8, 8, 8], "model_kwargs": TINY})
    store = make_store(paths, [8, 8, 8])
    with pytest.raises(ValueError, match="volume_loss needs the studies' volumes"):
        train_fold(experiment, pairs, folds, manifest, 0, tmp_path / "none", store_dir=store)
    result = train_fold(experiment, pairs, folds, manifest, 0, tmp_path / "model", store_dir=store,
                        volumes=_volumes(manifest))
    history = pd.read_csv(tmp_path / "model" / "history.tsv", sep="\t")
    assert len(history) == 2 and np.isfinite(history["train_loss"]).all()
    assert result["test"]["n"] > 0
    reloaded = models.load_trained_model(experiment, tmp_path / "model" / "model.pt")
    assert isinstance(reloaded, models.SharedEncoderClassifier) and reloaded.reads == "volumes"


def test_the_head_refit_changes_only_the_head_and_fits_the_training_pairs(tmp_path):
    """training.refit_head_steps: the same run with and without the refit has the same backbone and volume
    regression; only the rating head moves, towards the training pairs' ratings, and metrics.json says so."""
    paths = make_dataset(tmp_path, n_patients=8, pairs_per_patient=2, shape=(12, 12, 12))
    pairs = pd.read_csv(paths["pairs"], sep="\t", dtype=str, keep_default_na=False)
    manifest = pd.read_csv(paths["manifest"], sep="\t", dtype=str, keep_default_na=False)
    folds = json.loads(paths["folds"].read_text())
    store = make_store(paths, [8, 8, 8])
    states, results = {}, {}
    for steps in (0, 200):
        spec = {"modalities": ["T1"], "input": "stack", "architecture": "densenet121",
                "training": {**RECIPE, "max_epochs": 2, "schedule": "cosine", "refit_head_steps": steps}}
        experiment = experiments.resolve_experiment("e", {"e": spec}, {"image_size": [8, 8, 8], "model_kwargs": TINY})
        out = tmp_path / f"refit_{steps}"
        results[steps] = train_fold(experiment, pairs, folds, manifest, 0, out, store_dir=store,
                                    volumes=_volumes(manifest))
        states[steps] = torch.load(out / "model.pt")
        assert json.loads((out / "metrics.json").read_text())["head_refit"] == results[steps]["head_refit"]
    assert results[0]["head_refit"] is None
    refit = results[200]["head_refit"]
    assert refit["steps"] == 200 and refit["after"]["train"] >= refit["before"]["train"]
    assert set(refit["after"]) == {"train", "val"}
    frozen = [k for k in states[0] if not k.startswith(("head.", "clinical."))]
    assert frozen and all(torch.equal(states[0][k], states[200][k]) for k in frozen)
    assert any(not torch.equal(states[0][k], states[200][k]) for k in states[0] if k.startswith("head."))


def _blob_pairs(n: int, generator: torch.Generator):
    """Two-study pairs (n, 2 studies, 1 modality, 8^3) of a blob that shrinks (PR), stays (SD) or grows (PD),
    with each study's blob volume (log1p of the voxel count / 10) as its volume target."""
    grid = torch.stack(torch.meshgrid(*[torch.arange(8.0)] * 3, indexing="ij"))
    labels = torch.tensor([[1, 2, 3][i % 3] for i in range(n)])
    studies, volumes = torch.zeros(n, 2, 1, 8, 8, 8), torch.zeros(n, 2)
    for i, label in enumerate(labels.tolist()):
        centre = 3.5 + torch.rand(3, 1, 1, 1, generator=generator) - 0.5
        small, large = 1.3 + 0.3 * torch.rand((), generator=generator), 2.8 + 0.4 * torch.rand((), generator=generator)
        for side, radius in enumerate({1: (small, large), 2: (large, large), 3: (large, small)}[label]):
            blob = ((grid - centre) ** 2).sum(0).sqrt() <= radius
            studies[i, side, 0] = 1.0 + 2.0 * blob + 0.05 * torch.randn(8, 8, 8, generator=generator)
            volumes[i, side] = torch.log1p(blob.sum() / 10.0)
    return studies, volumes, labels


def test_the_volume_model_learns_the_change_and_a_swap_reverses_it():
    """The swap test for the recipe: trained with the volume loss, the concept head rates the direction of the
    change, so swapping current and previous turns PR into PD."""
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    studies, volumes, labels = _blob_pairs(96, generator)
    resolved = experiments.resolve_experiment(
        "v", {"v": {"modalities": ["T1"], "input": "stack", "architecture": "densenet121",
                    "training": RECIPE}}, {"image_size": [8, 8, 8], "model_kwargs": {**TINY, "init_features": 8}})
    model = models.model_for(resolved, 0)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    masks = torch.ones(len(labels), 2, 8, 8, 8, dtype=torch.bool)
    inputs = transforms.assemble_pairs(studies, masks, "stack", "none")
    for _ in range(120):
        batch = torch.randint(0, len(labels), (16,), generator=generator)
        model.train()
        logits = model(inputs[batch], None)
        loss = torch.nn.functional.cross_entropy(logits, labels[batch]) + torch.nn.functional.mse_loss(
            model.last_volumes, volumes[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    test, _, test_labels = _blob_pairs(30, torch.Generator().manual_seed(1))
    test_masks = torch.ones(30, 2, 8, 8, 8, dtype=torch.bool)
    model.eval()
    with torch.no_grad():
        predicted = model(transforms.assemble_pairs(test, test_masks, "stack", "none"), None).argmax(1)
        swapped = model(transforms.assemble_pairs(test[:, [1, 0]], test_masks, "stack", "none"), None).argmax(1)
    changing = test_labels != 2
    assert (predicted == test_labels)[changing].float().mean() >= 0.9
    assert (swapped[test_labels == 1] == 3).float().mean() >= 0.8  # a swapped PR reads as PD


def test_a_shared_encoder_model_exports_and_explains(tmp_path: Path):
    resolved = _resolved(["previous"], {"image_size": [16, 16, 16]})
    model = models.model_for(resolved, 0).eval()
    atlas = tmp_path / "brain.nii.gz"
    atlas.write_bytes(b"x")
    path = export_ensemble([model], resolved, model_card(resolved, [0], {}, {"brain": atlas}), tmp_path / "m.pt2")
    program = torch.export.load(path).module()
    image = torch.randn(2, 4, 16, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(program(image, torch.zeros(2, 0))[0], torch.softmax(model(image), 1), atol=1e-4,
                                   rtol=1e-4)
    settings = ExplainSettings(methods=("gradcam",), layer="backbone.features.denseblock1")
    cam = attribute(model, image[:1], 0, "gradcam", settings)
    assert cam.shape == (1, 16, 16, 16) and np.isfinite(cam).all()
