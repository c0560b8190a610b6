"""Training stage units: experiment resolution, channel layout, clinical encoding, pair items, caching,
augmentation, sampling, models and weights."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import torch
from train_helpers import make_dataset

from ranoflow.preprocess.qc import aggregate
from ranoflow.train import clinical, datasets, experiments, input_size, models, pair_items, transforms
from ranoflow.train.augment import BatchAugment
from ranoflow.train.fold import train_fold

TRAINING = {"image_size": [16, 16, 16], "pretext_tasks": {
    "rot": {"method": "rotation", "architecture": "densenet121", "modalities": ["T1", "T2"], "input": "stack"}}}


# ------------------------------------------------------------------------------- experiments
def test_resolve_fills_defaults_and_applies_overrides():
    exps = {"e": {"modalities": ["FLAIR", "T1"], "input": "stack", "architecture": "densenet264",
                  "training": {"lr": 0.5, "plateau": {"patience": 2}}}}
    resolved = experiments.resolve_experiment("e", exps, TRAINING)
    assert resolved["modalities"] == ["T1", "FLAIR"]  # canonical order
    assert resolved["training"]["lr"] == 0.5
    assert resolved["training"]["plateau"] == {"factor": 0.1, "patience": 2, "min_lr": 1e-7}
    assert resolved["training"]["weight_decay"] == 0.01 and resolved["training"]["batch_size"] == 4
    assert resolved["training"]["image_size"] == [16, 16, 16]
    assert resolved["pretraining"] == {"kind": "none"} and resolved["clinical"] == []


@pytest.mark.parametrize(
    ("modalities", "mode", "expected"),
    [
        (["CT1", "T1", "T2", "FLAIR"], "stack", 8),
        (["CT1", "T1", "T2", "FLAIR"], "subtract", 4),
        (["T1", "T2", "FLAIR"], "stack", 6),
        (["T1", "T2", "FLAIR"], "subtract", 3),
        (["FLAIR"], "stack", 2),
    ],
)
def test_channel_counts(modalities, mode, expected):
    names = experiments.channel_names(modalities, mode)
    assert len(names) == expected
    if mode == "stack":
        assert names[0].endswith("_current") and names[-1].endswith("_previous")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"training": {"lrr": 1}}, "lrr"),
        ({"pretraining": "nonsense"}, "neither 'none'"),
        ({"pretraining": "rot", "architecture": "resnet18"}, "architecture"),
        ({"pretraining": "rot"}, "in_channels"),
        ({"clinical": ["height"]}, "height"),
        ({"references": ["nadir", "latest"]}, "latest"),
    ],
)
def test_resolve_errors_name_the_problem(change, message):
    exp = {"modalities": ["T1", "T2", "FLAIR"], "input": "stack", "architecture": "densenet121", **change}
    with pytest.raises(ValueError, match=message):
        experiments.resolve_experiment("e", {"e": exp}, TRAINING)


def test_pretraining_kinds():
    base = {"modalities": ["T1", "T2"], "input": "stack", "architecture": "densenet121"}
    exps = {"a": {**base, "pretraining": "rot"}, "b": {**base, "pretraining": "weights/medicalnet.pth"}}
    resolved = experiments.resolve_experiments(exps, TRAINING)
    assert resolved["a"]["pretraining"] == {"kind": "task", "task": "rot"}
    assert resolved["b"]["pretraining"] == {"kind": "file", "path": "weights/medicalnet.pth"}


# ---------------------------------------------------------------------------------- clinical
def test_clinical_encoding_with_missing_indicators():
    fields = ["age", "sex", "idh", "mgmt", "weeks_between"]
    names = clinical.feature_names(fields)
    assert names == ["age", "age_missing", "sex_male", "sex_female", "sex_missing", "idh_mutant", "idh_wildtype",
                     "idh_missing", "mgmt_methylated", "mgmt_unmethylated", "mgmt_missing", "weeks_between",
                     "weeks_between_missing"]
    full = clinical.encode({"age": "61", "sex": "female", "idh": "wildtype", "mgmt": "unmethylated",
                            "weeks_between": "13"}, fields)
    np.testing.assert_allclose(full, [0.61, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0.25, 0], atol=1e-6)
    empty = clinical.encode({"age": "", "sex": "", "idh": "", "mgmt": None}, fields)
    np.testing.assert_allclose(empty, [0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 1])
    assert full.dtype == np.float32
    assert clinical.encode({"mgmt": "methylated"}, ["mgmt"]).tolist() == [1, 0, 0]


def test_clinical_rejects_values_the_index_stage_did_not_normalise():
    with pytest.raises(ValueError, match="idh"):
        clinical.encode({"idh": "perhaps"}, ["idh"])
    with pytest.raises(ValueError, match="not a normalised value"):
        clinical.encode({"idh": "WT"}, ["idh"])
    with pytest.raises(ValueError, match="unknown clinical field"):
        clinical.feature_names(["height"])
    with pytest.raises(ValueError, match="age"):
        clinical.encode({"age": "old"}, ["age"])


# ---------------------------------------------------------------------------------- datasets
@pytest.mark.parametrize(("mode", "channels"), [("stack", 6), ("subtract", 3)])
def test_pair_input_channels_and_size(tmp_path, mode, channels):
    paths = make_dataset(tmp_path, n_patients=2, pairs_per_patient=1, shape=(20, 18, 16), k=2)
    pairs = pd.read_csv(paths["pairs"], sep="\t", dtype=str, keep_default_na=False)
    manifest = pd.read_csv(paths["manifest"], sep="\t", dtype=str, keep_default_na=False)
    items, left = pair_items.pair_items(pairs, manifest, pairs["id"].tolist(), ["T1", "T2", "FLAIR"], ["age"])
    assert left.empty and len(items) == 2
    transform = transforms.preprocess_transform(["T1", "T2", "FLAIR"], mode, [12, 12, 12], "resize")
    out = transform(items[0])
    assert tuple(out["image"].shape) == (channels, 12, 12, 12)
    sides = {f"{side}_{key}" for side in ("current", "previous") for key in ("study", "dir", "checksum")}
    assert set(out) == {"id", "patient", "label", "clinical", "image", *sides}
    assert out["current_dir"].endswith(out["current_study"]) and out["previous_dir"].endswith(out["previous_study"])
    if mode == "subtract":  # current minus previous of the same modality
        stacked = transforms.preprocess_transform(["T1", "T2", "FLAIR"], "stack", [12, 12, 12], "resize")(items[0])
        torch.testing.assert_close(out["image"], stacked["image"][:3] - stacked["image"][3:])


def test_disk_cache_is_keyed_by_settings(tmp_path):
    paths = make_dataset(tmp_path, n_patients=1, pairs_per_patient=1)
    pairs = pd.read_csv(paths["pairs"], sep="\t", dtype=str, keep_default_na=False)
    manifest = pd.read_csv(paths["manifest"], sep="\t", dtype=str, keep_default_na=False)
    items, _ = pair_items.pair_items(pairs, manifest, pairs["id"].tolist(), ["T1"], [])
    for size in (8, 8, 10):
        transform = transforms.preprocess_transform(["T1"], "stack", [size] * 3, "resize")
        dataset = datasets.cached_dataset(items, transform, "disk", tmp_path / "cache", cache_key=str(size))
        assert tuple(dataset[0]["image"].shape) == (2, size, size, size)
    assert len(list((tmp_path / "cache").glob("*.pt"))) == 2


def test_disk_cache_follows_new_images_of_a_study(tmp_path):
    """Preprocessing rerun with another setting writes new images at the same paths: the disk cache
    (keyed by the manifest's checksums) hands training the new tensors, not the cached old ones."""
    paths = make_dataset(tmp_path, n_patients=1, pairs_per_patient=1, shape=(20, 20, 20))
    pairs = pd.read_csv(paths["pairs"], sep="\t", dtype=str, keep_default_na=False)
    transform = transforms.preprocess_transform(["T1"], "stack", [8, 8, 8], "resize")

    def cached_image() -> torch.Tensor:
        study_dirs = sorted({str(p.parent) for p in (tmp_path / "preprocessed").rglob("status.json")})
        _, manifest = aggregate(study_dirs, outlier_mad=0)
        items, _ = pair_items.pair_items(pairs, manifest.astype(str), pairs["id"].tolist(), ["T1"], [])
        return datasets.cached_dataset(items, transform, "disk", tmp_path / "cache", cache_key="8")[0]["image"]

    before = cached_image()
    for side in ("current", "previous"):  # another grid: 16^3 voxels instead of 20^3
        study = tmp_path / "preprocessed" / pairs["patient"][0] / pairs[side][0]
        for name in ("T1.nii.gz", "brain_mask.nii.gz"):
            image = nib.load(study / name)
            data = np.asarray(image.dataobj)[2:18, 2:18, 2:18]
            nib.save(nib.Nifti1Image(data * (3.0 if name == "T1.nii.gz" else 1), image.affine), study / name)
    after = cached_image()
    expected = transform(pair_items.pair_items(
        pairs, pd.read_csv(paths["manifest"], sep="\t", dtype=str, keep_default_na=False), pairs["id"].tolist(),
        ["T1"], [])[0][0])["image"]
    torch.testing.assert_close(after, expected)
    assert not torch.allclose(after, before)


def test_pairs_lacking_a_modality_are_left_out(tmp_path):
    paths = make_dataset(tmp_path, n_patients=2, pairs_per_patient=1, drop_flair_patient=True)
    pairs = pd.read_csv(paths["pairs"], sep="\t", dtype=str, keep_default_na=False)
    manifest = pd.read_csv(paths["manifest"], sep="\t", dtype=str, keep_default_na=False)
    manifest.loc[manifest["patient"] == "Patient-002", "status"] = "failed"
    items, left = pair_items.pair_items(pairs, manifest, pairs["id"].tolist(), ["FLAIR"], [])
    assert items == []
    assert left["reason"].str.contains("lacks FLAIR").sum() == 1
    assert left["reason"].str.contains("status failed").sum() == 1


def _with_nadir(tmp_path, paths):
    """Each pair of make_dataset gets a nadir study of its own (a tumour-free study of the same brain)."""
    from train_helpers import write_study

    pairs = pd.read_csv(paths["pairs"], sep="\t", dtype=str, keep_default_na=False)
    manifest = pd.read_csv(paths["manifest"], sep="\t", dtype=str, keep_default_na=False)
    rng = np.random.default_rng(5)
    rows = []
    for pair in pairs.itertuples():
        nadir = f"week-{int(pair.previous[5:]) + 1:03d}"
        directory = tmp_path / "preprocessed" / pair.patient / nadir
        write_study(directory, (20, 18, 16), np.array([10.0, 9.0, 8.0]), 0.0, rng)
        rows.append({"patient": pair.patient, "study": nadir, "status": "ok", "reason": "", "dir": str(directory),
                     "modalities": "CT1,T1,T2,FLAIR"})
    pairs["nadir"] = [f"week-{int(p[5:]) + 1:03d}" for p in pairs["previous"]]
    return pairs, pd.concat([manifest, pd.DataFrame(rows)], ignore_index=True)


@pytest.mark.parametrize(("mode", "channels"), [("stack", 9), ("subtract", 6)])
def test_multi_reference_experiment_reads_each_reference_study(tmp_path, mode, channels):
    paths = make_dataset(tmp_path, n_patients=2, pairs_per_patient=1, shape=(20, 18, 16), k=2)
    pairs, manifest = _with_nadir(tmp_path, paths)
    mods = ["T1", "T2", "FLAIR"]
    resolved = experiments.resolve_experiment(
        "e", {"e": {"modalities": mods, "input": mode, "references": ["nadir", "previous"],
                    "architecture": "densenet121"}}, TRAINING)
    assert resolved["references"] == ["previous", "nadir"] and resolved["in_channels"] == channels
    assert resolved["channels"][-1] == ("FLAIR_nadir" if mode == "stack" else "FLAIR_current-nadir")
    items, left = pair_items.pair_items(pairs, manifest, pairs["id"].tolist(), mods, [], True,
                                        resolved["references"])
    assert left.empty
    first = pairs.iloc[0]
    assert items[0]["nadir_study"] == first["nadir"] and items[0]["previous_study"] == first["previous"]
    assert items[0]["nadir_dir"].endswith(f"{first['patient']}/{first['nadir']}")

    def image(references, input_mode="stack"):
        refs_items, _ = pair_items.pair_items(pairs, manifest, [first["id"]], mods, [], True, references)
        return transforms.preprocess_transform(mods, input_mode, [12, 12, 12], "resize", references)(
            refs_items[0])["image"]

    both = image(resolved["references"], mode)
    assert tuple(both.shape) == (channels, 12, 12, 12)
    previous_only, nadir_only = image(["previous"]), image(["nadir"])
    torch.testing.assert_close(nadir_only[:3], previous_only[:3])  # the current study, the same crop
    expected = (
        torch.cat([previous_only, nadir_only[3:]])
        if mode == "stack"
        else torch.cat([previous_only[:3] - previous_only[3:], nadir_only[:3] - nadir_only[3:]])
    )
    torch.testing.assert_close(both, expected)
    assert not torch.allclose(previous_only[3:], nadir_only[3:])  # two different studies were read
    model = models.build_model("densenet121", resolved["in_channels"], 4, [12, 12, 12],
                               model_kwargs={"init_features": 4, "growth_rate": 4, "block_config": [1, 1]})
    assert model.eval()(both[None]).shape == (1, 4)


def test_pairs_without_a_referenced_study_are_left_out(tmp_path):
    paths = make_dataset(tmp_path, n_patients=2, pairs_per_patient=1)
    pairs, manifest = _with_nadir(tmp_path, paths)
    pairs.loc[0, "nadir"] = ""
    items, left = pair_items.pair_items(pairs, manifest, pairs["id"].tolist(), ["T1"], [], True, ["nadir"])
    assert [i["id"] for i in items] == [pairs.loc[1, "id"]]
    assert left.to_dict("records") == [{"id": pairs.loc[0, "id"], "reason": "no nadir study"}]
    _, left = pair_items.pair_items(pairs.drop(columns="nadir"), manifest, pairs["id"].tolist(), ["T1"], [],
                                    True, ["baseline"])
    assert left["reason"].tolist() == ["no baseline study (pairs.tsv has no baseline column)"] * 2


def test_batch_augment_is_seeded_and_follows_monai():
    from monai.transforms import AdjustContrast

    settings = experiments.validated_section("training", {})["augment"]
    image = torch.rand(3, 2, 6, 6, 6)
    augment = BatchAugment(settings)
    augment.reseed(5)
    first = augment(image)
    augment.reseed(5)
    torch.testing.assert_close(augment(image), first)
    assert not torch.equal(first, image) and first.shape == image.shape
    off = {**settings, "flip_prob": 0.0, "scale_intensity_prob": 0.0, "gamma_prob": 0.0, "noise_prob": 0.0}
    torch.testing.assert_close(BatchAugment(off)(image), image)
    flip = BatchAugment({**off, "flip_prob": 1.0})(image)
    torch.testing.assert_close(flip, image.flip(2, 3, 4))
    gamma = BatchAugment({**off, "gamma_prob": 1.0, "gamma_range": [2.0, 2.0]})(image)
    torch.testing.assert_close(gamma[0], AdjustContrast(2.0)(image[0]).as_tensor())  # one range per sample
    # two studies of the same tissue, a bright tumour in the first only: the tissue maps alike in both
    pair = torch.rand(1, 1, 6, 6, 6).repeat(1, 2, 1, 1, 1)
    pair[:, 0, :2] += 5.0
    mapped = BatchAugment({**off, "gamma_prob": 1.0, "gamma_range": [2.0, 2.0]})(pair)
    torch.testing.assert_close(mapped[0, 0, 2:], mapped[0, 1, 2:])
    no_gamma = BatchAugment({**off, "gamma_prob": 1.0}, gamma=False)(image)
    torch.testing.assert_close(no_gamma, image)


def test_class_weights_and_sampler():
    weights = datasets.class_weights([0, 0, 0, 1, 3, 3])
    np.testing.assert_allclose(weights.numpy(), np.array([1 / 3, 1, 0, 1 / 2]) * 3 / (1 / 3 + 1 + 1 / 2))
    sampler = datasets.weighted_sampler([0] * 90 + [1] * 10, torch.Generator().manual_seed(0))
    drawn = np.asarray(list(sampler))
    assert 0.35 < np.mean(drawn >= 90) < 0.65  # minority drawn about as often as the majority


# ------------------------------------------------------------------------------------ models
@pytest.mark.parametrize("architecture", ["densenet121", "resnet10", "efficientnet-b0", "vit"])
def test_models_forward_with_clinical_fusion(architecture):
    kwargs = {"vit": {"hidden_size": 48, "mlp_dim": 64, "num_layers": 1, "num_heads": 4, "patch_size": 8},
              "densenet121": {"init_features": 8, "growth_rate": 4, "block_config": [1, 1, 1, 1]}}
    model = models.build_model(architecture, 6, 4, [32, 32, 32], clinical_dim=5, model_kwargs=kwargs.get(architecture))
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(2, 6, 32, 32, 32), torch.randn(2, 5))
    assert out.shape == (2, 4)
    with pytest.raises(ValueError, match="clinical"):
        model(torch.randn(2, 6, 32, 32, 32))


def test_resnet_first_conv_strides_two():
    backbone, dim = models.build_backbone("resnet18", 2, [32, 32, 32])
    assert backbone.conv1.stride == (2, 2, 2) and dim == 512


def test_weights_roundtrip_and_shape_check(tmp_path):
    small = {"init_features": 8, "growth_rate": 4, "block_config": [1, 1, 1, 1]}
    source, _ = models.build_backbone("densenet121", 6, [16] * 3, small)
    torch.save({"state_dict": {f"module.{k}": v for k, v in source.state_dict().items()}}, tmp_path / "w.pth")
    target, _ = models.build_backbone("densenet121", 6, [16] * 3, small)
    report = models.load_backbone_weights(target, tmp_path / "w.pth")
    assert not report["missing"] and not report["unused"]
    torch.testing.assert_close(target.features.conv0.weight, source.features.conv0.weight)

    wrong, _ = models.build_backbone("densenet121", 3, [16] * 3, small)
    with pytest.raises(models.WeightsShapeError, match=r"features\.conv0\.weight: file \(8, 6, 7, 7, 7\) vs network \(8, 3"):
        models.load_backbone_weights(wrong, tmp_path / "w.pth")
    resnet, _ = models.build_backbone("resnet10", 6, [16] * 3)
    with pytest.raises(models.WeightsShapeError, match="no tensor name in common"):
        models.load_backbone_weights(resnet, tmp_path / "w.pth")


def test_weights_only_refuses_pickled_objects(tmp_path):
    torch.save({"conv": torch.zeros(1), "object": pd.DataFrame()}, tmp_path / "evil.pt")
    backbone, _ = models.build_backbone("resnet10", 1, [16] * 3)
    with pytest.raises(Exception, match="[Ww]eights only load failed|weights_only"):
        models.load_backbone_weights(backbone, tmp_path / "evil.pt")


def test_training_refuses_a_fold_whose_training_split_lacks_a_class(tmp_path):
    paths = make_dataset(tmp_path, n_patients=8, pairs_per_patient=2, shape=(12, 12, 12))
    pairs = pd.read_csv(paths["pairs"], sep="\t", dtype=str, keep_default_na=False)
    manifest = pd.read_csv(paths["manifest"], sep="\t", dtype=str, keep_default_na=False)
    folds = json.loads(paths["folds"].read_text())
    label = dict(zip(pairs["id"], pairs["label"]))
    folds["folds"][1]["train"] = [i for i in folds["folds"][1]["train"] if label[i] != "PR"]
    settings = {"image_size": [8, 8, 8], "max_epochs": 1, "cache": "none",
                "model_kwargs": {"init_features": 4, "growth_rate": 4, "block_config": [1, 1]}}
    spec = {"e": {"modalities": ["T1"], "input": "stack", "architecture": "densenet121"}}
    experiment = experiments.resolve_experiment("e", spec, settings)
    with pytest.raises(ValueError, match="fold 1: no PR pair in the training split"):
        train_fold(experiment, pairs, folds, manifest, 1, tmp_path / "model")
    assert not (tmp_path / "model" / "model.pt").exists()


def test_an_experiment_without_the_previous_study_trains_and_its_checkpoint_follows_every_reference(tmp_path):
    paths = make_dataset(tmp_path, n_patients=8, pairs_per_patient=2, shape=(20, 18, 16))
    pairs, manifest = _with_nadir(tmp_path, paths)
    folds = json.loads(paths["folds"].read_text())
    settings = {"image_size": [8, 8, 8], "max_epochs": 1, "cache": "none",
                "model_kwargs": {"init_features": 4, "growth_rate": 4, "block_config": [1, 1]}}
    spec = {"e": {"modalities": ["T1"], "input": "stack", "references": ["nadir"], "architecture": "densenet121"}}
    experiment = experiments.resolve_experiment("e", spec, settings)
    train_fold(experiment, pairs, folds, manifest, 0, tmp_path / "model")
    assert (tmp_path / "model" / "model.pt").is_file()

    items, _ = pair_items.pair_items(pairs, manifest, pairs["id"].tolist(), ["T1"], [], True, ["nadir"])
    fingerprint = datasets.content_fingerprint({"train": items})
    items[0]["nadir_checksum"] = "changed"  # new images of one pair's nadir study
    assert datasets.content_fingerprint({"train": items}) != fingerprint


@pytest.mark.parametrize("architecture, kwargs", [
    ("densenet121", None), ("densenet264", None), ("densenet121", {"block_config": [1, 2, 2]}),
    ("efficientnet-b0", None), ("resnet10", None),
])
def test_each_architectures_minimum_input_size_is_the_real_networks(architecture, kwargs):
    """input_size.minimum_size (pure Python, read at parse time) against the MONAI network: the minimum runs, one
    voxel less fails inside torch."""
    least = input_size.minimum_size(architecture, kwargs)
    small = {"init_features": 4, "growth_rate": 4} if architecture.startswith("densenet") else {}
    sizes = [least, least - 1] if least > 1 else [least]
    for size in sizes:
        if architecture == "vit":
            small = {"hidden_size": 48, "mlp_dim": 96, "num_layers": 1, "num_heads": 4}
        net, _ = models.build_backbone(architecture, 1, [size] * 3, (kwargs or {}) | small)
        net.train()
        fits = True
        try:
            with torch.no_grad():
                net(torch.rand(2, 1, size, size, size))
        except (RuntimeError, ValueError):
            fits = False
        assert fits == (size == least), (architecture, size, least)
        problem = input_size.image_size_problem(architecture, [size] * 3, kwargs, "training.image_size")
        assert (problem is None) == fits


def test_an_image_size_too_small_for_the_architecture_is_refused_naming_the_key():
    exps = {"deep": {"modalities": ["T1"], "input": "stack", "architecture": "densenet264",
                     "training": {"image_size": [16, 16, 16]}}}
    resolved = experiments.resolve_experiments(exps, {"image_size": [64, 64, 64]})
    lines = experiments.image_size_problems(exps, resolved, {}, {})
    assert lines == ["experiments.deep.training.image_size [16, 16, 16] is too small for densenet264: its 5 "
                     "downsampling layers need at least 29 voxels per axis (allowed: image_size >= [29, 29, 29], "
                     "or a smaller network)"]
