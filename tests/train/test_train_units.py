"""Training stage units: experiment resolution, channel layout, clinical encoding, pair items, the tensor
store and pair assembly, augmentation, sampling, models and weights."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import torch
from train_helpers import make_dataset, make_store

from ranoflow.train import clinical, datasets, experiments, input_size, models, pair_items, tensor_store, transforms
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
def _tables(paths):
    tsv = lambda p: pd.read_csv(p, sep="\t", dtype=str, keep_default_na=False)  # noqa: E731
    return tsv(paths["pairs"]), tsv(paths["manifest"])


def test_store_holds_each_study_once_at_the_grid_with_its_mask(tmp_path):
    paths = make_dataset(tmp_path, n_patients=2, pairs_per_patient=1, shape=(20, 18, 16), k=2,
                         drop_flair_patient=True)
    store = make_store(paths, [12, 10, 8])
    pairs, manifest = _tables(paths)
    geometry = json.loads((store / "grid.json").read_text())
    assert geometry["atlas_shape"] == [20, 18, 16] and geometry["image_size"] == [12, 10, 8]
    for row in manifest.itertuples():
        images, mask = tensor_store.study_files(store, row.patient, row.study)
        array = np.load(images, mmap_mode="r")
        assert array.dtype == np.float16 and array.shape == (4, 12, 10, 8)
        brain = tensor_store.unpack_mask(np.load(mask), [12, 10, 8])
        assert 0.3 < brain.mean() < 0.9
        has_flair = "FLAIR" in row.modalities
        assert np.isnan(array[3]).all() != has_flair  # a modality the study lacks is NaN
    lacking = manifest[~manifest["modalities"].str.contains("FLAIR")].iloc[0]
    with pytest.raises(tensor_store.StoreFileError, match="has no FLAIR"):
        tensor_store.open_study(*tensor_store.study_files(store, lacking.patient, lacking.study), ["FLAIR"],
                                [12, 10, 8], mmap=True)


@pytest.mark.parametrize("mode", ["stack", "subtract", "stack_diff"])
def test_pairs_are_assembled_per_batch_in_the_channel_order_of_the_experiment(mode):
    studies = torch.randn(2, 3, 2, 4, 4, 4).half()  # batch, study (current, previous, nadir), modality
    masks = torch.ones(2, 3, 4, 4, 4, dtype=torch.bool)
    image = transforms.assemble_pairs(studies, masks, mode, "none")
    names = experiments.channel_names(["T1", "T2"], mode, ["previous", "nadir"])
    assert image.dtype == torch.float32 and tuple(image.shape) == (2, len(names), 4, 4, 4)
    x = studies.float()
    expected = {
        "T1_current": x[:, 0, 0], "T2_current": x[:, 0, 1], "T1_previous": x[:, 1, 0], "T2_nadir": x[:, 2, 1],
        "T1_current-previous": x[:, 0, 0] - x[:, 1, 0], "T2_current-nadir": x[:, 0, 1] - x[:, 2, 1],
    }
    for name, value in expected.items():
        if name in names:
            torch.testing.assert_close(image[:, names.index(name)], value)


def test_pair_mask_intersection_keeps_the_mask_rim_out_of_a_difference():
    current, previous = torch.zeros(1, 1, 6, 6, 6), torch.zeros(1, 1, 6, 6, 6)
    masks = torch.zeros(1, 2, 6, 6, 6, dtype=torch.bool)
    masks[0, 0, 1:5, 1:5, 1:5] = True
    masks[0, 1, 1:5, 1:5, 2:6] = True  # the previous study's mask is shifted by one voxel
    current[masks[:, :1]] = 1.0
    previous[masks[:, 1:]] = 1.0
    studies = torch.stack([current, previous], dim=1)
    own = transforms.assemble_pairs(studies, masks, "subtract", "none")
    shared = transforms.assemble_pairs(studies, masks, "subtract", "intersection")
    assert own.abs().sum() == 2 * 16  # the rim where only one mask holds brain
    assert shared.abs().sum() == 0
    stacked = transforms.assemble_pairs(studies, masks, "stack", "intersection")
    assert stacked.sum() == 2 * 4 * 4 * 3  # each study within the common brain only


def test_memory_and_memory_mapped_stores_give_the_same_batches(tmp_path):
    paths = make_dataset(tmp_path, n_patients=2, pairs_per_patient=1, shape=(16, 16, 16), k=2)
    store = make_store(paths, [8, 8, 8])
    pairs, manifest = _tables(paths)
    items, _ = pair_items.pair_items(pairs, manifest, pairs["id"].tolist(), ["T2", "CT1"], ["age"])
    loaded = [datasets.StoreDataset(items, store, ["T2", "CT1"], ["previous"], [8, 8, 8], memory)
              for memory in (True, False)]
    for a, b in zip(loaded[0], loaded[1]):
        assert a["studies"].shape == (2, 2, 8, 8, 8) and a["studies"].dtype == torch.float16
        torch.testing.assert_close(a["studies"], b["studies"])
        assert torch.equal(a["masks"], b["masks"]) and a["id"] == b["id"]
    stored = np.load(tensor_store.study_files(store, items[0]["patient"], items[0]["current_study"])[0])
    torch.testing.assert_close(loaded[0][0]["studies"][0].numpy(), stored[[0, 2]])  # CT1, T2 in MODALITIES order
    assert loaded[1].nbytes() == 4 * (2 * 8**3 * 2 + 8**3 // 8)
    assert datasets.in_memory("auto", loaded[1].nbytes(), memory_mb=1)
    assert not datasets.in_memory("auto", 10 * 2**20, memory_mb=10)
    assert not datasets.in_memory("mmap", 1, memory_mb=10**6)


def test_loaders_read_each_batch_once_in_order_through_the_prefetch_thread(tmp_path):
    """A batch is collated by the store itself (one copy per study), equal to its samples stacked; an
    in-memory store is read in the training process, a memory-mapped one by worker processes; the prefetch
    thread keeps the loader's order, raises a reader's error in the consumer and stops when it stops."""
    from ranoflow.train import loop
    from ranoflow.train.prefetch import prefetched

    paths = make_dataset(tmp_path, n_patients=3, pairs_per_patient=2, shape=(16, 16, 16), k=2)
    store = make_store(paths, [8, 8, 8])
    pairs, manifest = _tables(paths)
    items, _ = pair_items.pair_items(pairs, manifest, pairs["id"].tolist(), ["T1"], ["age"])
    settings = {"batch_size": 2, "num_workers": 2}
    for memory in (True, False):
        data = datasets.StoreDataset(items, store, ["T1"], ["previous"], [8, 8, 8], memory)
        loader = loop.eval_loader(data, settings)
        assert loader.num_workers == (0 if memory else 2)
        batches = list(prefetched(loader, torch.device("cpu")))
        assert [i for b in batches for i in b["id"]] == [item["id"] for item in items]
        first = [data[0], data[1]]
        torch.testing.assert_close(batches[0]["studies"], torch.stack([s["studies"] for s in first]))
        assert torch.equal(batches[0]["masks"], torch.stack([s["masks"] for s in first]))
        assert batches[0]["label"].tolist() == [s["label"] for s in first]
    endless = ({"step": torch.tensor(k)} for k in range(10**9))
    assert [int(b["step"]) for _, b in zip(range(2), prefetched(endless, torch.device("cpu")))] == [0, 1]

    def failing():
        yield {"x": torch.zeros(1)}
        raise OSError("store file gone")

    with pytest.raises(OSError, match="store file gone"):
        list(prefetched(failing(), torch.device("cpu")))


@pytest.mark.parametrize("which", ["images", "mask"])
def test_a_truncated_store_file_is_named_in_one_line_and_discarded(tmp_path, which):
    paths = make_dataset(tmp_path, n_patients=1, pairs_per_patient=1, shape=(12, 12, 12), k=1)
    store = make_store(paths, [8, 8, 8])
    pairs, manifest = _tables(paths)
    items, _ = pair_items.pair_items(pairs, manifest, pairs["id"].tolist(), ["T1"], [])
    broken = tensor_store.study_files(store, items[0]["patient"], items[0]["current_study"])[which == "mask"]
    broken.write_bytes(broken.read_bytes()[: len(broken.read_bytes()) // 3 if which == "images" else 20])
    with pytest.raises(tensor_store.StoreFileError) as error:
        datasets.StoreDataset(items, store, ["T1"], ["previous"], [8, 8, 8], in_memory=True)
    message = str(error.value)
    assert str(broken) in message and "\n" not in message and "study_tensors" in message
    assert not broken.exists()  # discarded: Snakemake plans its study_tensors job again


def test_a_store_of_another_grid_is_refused_naming_the_file(tmp_path):
    paths = make_dataset(tmp_path, n_patients=1, pairs_per_patient=1, shape=(12, 12, 12), k=1)
    store = make_store(paths, [8, 8, 8])
    pairs, manifest = _tables(paths)
    items, _ = pair_items.pair_items(pairs, manifest, pairs["id"].tolist(), ["T1"], [])
    with pytest.raises(tensor_store.StoreFileError, match=r"week-\d+\.npy: shape .* expected \[4, 10, 10, 10\]"):
        datasets.StoreDataset(items, store, ["T1"], ["previous"], [10, 10, 10], in_memory=True)


def test_every_experiment_shares_the_stores_grid():
    resolved = experiments.resolve_experiments(
        {"a": {"modalities": ["T1"], "input": "stack", "architecture": "densenet121"},
         "b": {"modalities": ["T1"], "input": "stack", "architecture": "densenet121",
               "training": {"image_size": [24, 24, 24]}}}, TRAINING)
    full = experiments.validated_section("training", TRAINING)
    assert experiments.grid_overrides(resolved, full) == [
        "b: training.image_size [24, 24, 24] differs from the tensor store's grid (training.image_size: "
        "[16, 16, 16]); set it under training: for every experiment"]


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
    manifest = pd.concat([manifest, pd.DataFrame(rows)], ignore_index=True)
    manifest.to_csv(paths["manifest"], sep="\t", index=False)
    return pairs, manifest


@pytest.mark.parametrize(("mode", "channels"), [("stack", 9), ("subtract", 6), ("stack_diff", 15)])
def test_multi_reference_experiment_reads_each_reference_study(tmp_path, mode, channels):
    paths = make_dataset(tmp_path, n_patients=2, pairs_per_patient=1, shape=(20, 18, 16), k=2)
    pairs, manifest = _with_nadir(tmp_path, paths)
    store = make_store(paths, [12, 12, 12])
    mods = ["T1", "T2", "FLAIR"]
    resolved = experiments.resolve_experiment(
        "e", {"e": {"modalities": mods, "input": mode, "references": ["nadir", "previous"],
                    "architecture": "densenet121"}}, TRAINING)
    assert resolved["references"] == ["previous", "nadir"] and resolved["in_channels"] == channels
    assert resolved["channels"][-1] == ("FLAIR_nadir" if mode == "stack" else "FLAIR_current-nadir")
    assert resolved["channels"][:9 if mode == "stack_diff" else 0] == experiments.channel_names(
        mods, "stack", resolved["references"])[:9 if mode == "stack_diff" else 0]
    items, left = pair_items.pair_items(pairs, manifest, pairs["id"].tolist(), mods, [], True,
                                        resolved["references"])
    assert left.empty
    first = pairs.iloc[0]
    assert items[0]["nadir_study"] == first["nadir"] and items[0]["previous_study"] == first["previous"]
    assert items[0]["nadir_dir"].endswith(f"{first['patient']}/{first['nadir']}")

    def image(references, input_mode="stack"):
        refs_items, _ = pair_items.pair_items(pairs, manifest, [first["id"]], mods, [], True, references)
        sample = datasets.StoreDataset(refs_items, store, mods, references, [12, 12, 12], True)[0]
        return transforms.assemble_pairs(sample["studies"][None], sample["masks"][None], input_mode, "none")[0]

    both = image(resolved["references"], mode)
    assert tuple(both.shape) == (channels, 12, 12, 12)
    previous_only, nadir_only = image(["previous"]), image(["nadir"])
    torch.testing.assert_close(nadir_only[:3], previous_only[:3])  # the current study, the same crop
    stacked = torch.cat([previous_only, nadir_only[3:]])
    differences = torch.cat([previous_only[:3] - previous_only[3:], nadir_only[:3] - nadir_only[3:]])
    expected = {"stack": stacked, "subtract": differences, "stack_diff": torch.cat([stacked, differences])}[mode]
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
    settings = {"image_size": [8, 8, 8], "max_epochs": 1,
                "model_kwargs": {"init_features": 4, "growth_rate": 4, "block_config": [1, 1]}}
    spec = {"e": {"modalities": ["T1"], "input": "stack", "architecture": "densenet121"}}
    experiment = experiments.resolve_experiment("e", spec, settings)
    with pytest.raises(ValueError, match="fold 1: no PR pair in the training split"):
        train_fold(experiment, pairs, folds, manifest, 1, tmp_path / "model", store_dir=make_store(paths, [8, 8, 8]))
    assert not (tmp_path / "model" / "model.pt").exists()


def test_an_experiment_without_the_previous_study_trains_and_its_checkpoint_follows_every_reference(tmp_path):
    paths = make_dataset(tmp_path, n_patients=8, pairs_per_patient=2, shape=(20, 18, 16))
    pairs, manifest = _with_nadir(tmp_path, paths)
    folds = json.loads(paths["folds"].read_text())
    settings = {"image_size": [8, 8, 8], "max_epochs": 1,
                "model_kwargs": {"init_features": 4, "growth_rate": 4, "block_config": [1, 1]}}
    spec = {"e": {"modalities": ["T1"], "input": "stack", "references": ["nadir"], "architecture": "densenet121"}}
    experiment = experiments.resolve_experiment("e", spec, settings)
    train_fold(experiment, pairs, folds, manifest, 0, tmp_path / "model", store_dir=make_store(paths, [8, 8, 8]))
    assert (tmp_path / "model" / "model.pt").is_file()

    items, _ = pair_items.pair_items(pairs, manifest, pairs["id"].tolist(), ["T1"], [], True, ["nadir"])
    fingerprint = datasets.content_fingerprint({"train": items})
    items[0]["nadir_checksum"] = "changed"  # new images of one pair's nadir study
    assert datasets.content_fingerprint({"train": items}) != fingerprint


def _direction_pairs(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(studies (n, 2, 1, 8, 8, 8), masks, labels): a blob that shrinks (PR), grows (PD) or stays (SD) from
    the previous study to the current one; only the direction of the change tells PR from PD."""
    grid = torch.stack(torch.meshgrid(*[torch.arange(8.0)] * 3, indexing="ij"))
    labels = torch.tensor([[1, 2, 3][i % 3] for i in range(n)])
    studies = torch.zeros(n, 2, 1, 8, 8, 8)
    for i, label in enumerate(labels.tolist()):
        centre = 3.5 + torch.rand(3, 1, 1, 1, generator=generator) - 0.5
        small, large = 1.2 + 0.3 * torch.rand((), generator=generator), 2.8 + 0.4 * torch.rand((), generator=generator)
        radii = {1: (small, large), 2: (large, large), 3: (large, small)}[label]  # (current, previous)
        for side, radius in enumerate(radii):
            blob = ((grid - centre) ** 2).sum(0).sqrt() <= radius
            studies[i, side, 0] = 1.0 + 2.0 * blob + 0.05 * torch.randn(8, 8, 8, generator=generator)
    return studies.half(), torch.ones(n, 2, 8, 8, 8, dtype=torch.bool), labels


def test_swapping_current_and_reference_changes_a_direction_aware_models_predictions():
    """Issue 19's swap test: a reference model ([previous], stack_diff) trained on pairs whose label is the
    direction of change must read which study is current: swapping the studies turns PR into PD."""
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    studies, masks, labels = _direction_pairs(96, generator)
    resolved = experiments.resolve_experiment(
        "ref", {"ref": {"modalities": ["T1"], "input": "stack_diff", "references": ["previous"],
                        "architecture": "densenet121"}}, TRAINING)
    assert resolved["channels"] == ["T1_current", "T1_previous", "T1_current-previous"]
    model = models.build_model("densenet121", resolved["in_channels"], 4, [8, 8, 8],
                               model_kwargs={"init_features": 8, "growth_rate": 8, "block_config": [1, 1]})
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    inputs = transforms.assemble_pairs(studies, masks, "stack_diff", "intersection")
    for step in range(80):
        batch = torch.randint(0, len(labels), (16,), generator=generator)
        model.train()
        loss = torch.nn.functional.cross_entropy(model(inputs[batch], None), labels[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    test, test_masks, test_labels = _direction_pairs(30, torch.Generator().manual_seed(1))
    model.eval()
    with torch.no_grad():
        predicted = model(transforms.assemble_pairs(test, test_masks, "stack_diff", "intersection"), None).argmax(1)
        swapped = model(transforms.assemble_pairs(test[:, [1, 0]], test_masks, "stack_diff", "intersection"),
                        None).argmax(1)
    changing = test_labels != 2  # PR and PD pairs
    assert (predicted == test_labels)[changing].float().mean() >= 0.9
    assert (swapped != predicted)[changing].float().mean() >= 0.9
    assert (swapped[test_labels == 1] == 3).float().mean() >= 0.8  # a swapped PR reads as PD


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


def test_a_store_set_lists_every_store_file_of_its_studies_once(tmp_path):
    """rule tensor_set: the one input a train job plans, listing the store files of per-study jobs and of
    per-patient folders alike, with their sizes (a rebuilt file changes the listing)."""
    from ranoflow.train.store_sets import store_listing

    study = tmp_path / "Patient-001" / "week-000.npy"
    folder = tmp_path / "Patient-002"
    for path in (study, folder / "week-001.npy", folder / "week-001_mask.npy"):
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, np.zeros(3 if "mask" in path.name else 5, np.float16))
    listing = store_listing([study, folder])
    assert listing["path"].tolist() == [str(study), str(folder / "week-001.npy"), str(folder / "week-001_mask.npy")]
    assert listing["bytes"].tolist() == [study.stat().st_size, (folder / "week-001.npy").stat().st_size,
                                         (folder / "week-001_mask.npy").stat().st_size]
