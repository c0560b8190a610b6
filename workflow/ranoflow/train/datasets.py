"""A fold's pairs as datasets over the tensor store: items of each split, studies read from the store (in
memory where the store fits the job's memory, memory-mapped otherwise), pairs assembled per batch on the
training device, class-balanced sampling."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset, WeightedRandomSampler, get_worker_info

from ranoflow.train import clinical
from ranoflow.train.experiments import canonical_modalities
from ranoflow.train.pair_items import pair_items, sides
from ranoflow.train.prefetch import prefetched
from ranoflow.train.tensor_store import open_study, study_files, unpack_mask
from ranoflow.train.transforms import assemble_pairs
from ranoflow.vocabulary import CLASSES

log = logging.getLogger(__name__)

MEMORY_SHARE = 0.5  # load the store into memory when it takes at most this share of the job's memory
LOAD_MODES = ("auto", "memory", "mmap")


class StoreDataset(Dataset):
    """Pairs of a fold read from the tensor store: each item holds its studies' tensors (study, modality,
    *grid) in float16 and their brain masks; the network input is assembled per batch (DeviceBatches)."""

    def __init__(self, items: list[dict], store_dir: str | Path, modalities: Sequence[str],
                 references: Sequence[str], image_size: Sequence[int], in_memory: bool,
                 opened: dict | None = None) -> None:
        self.items = list(items)
        self.store_dir = Path(store_dir)
        self.modalities = canonical_modalities(list(modalities))
        self.sides = sides(references)
        self.image_size = [int(s) for s in image_size]
        self.in_memory = in_memory
        self.pin_memory = torch.cuda.is_available()
        self._open: dict[tuple[str, str], tuple] = {} if opened is None else opened  # shared by a fold's splits
        if in_memory:
            for item in self.items:
                for side in self.sides:
                    self._study(item["patient"], item[f"{side}_study"])

    def __len__(self) -> int:
        return len(self.items)

    def __getstate__(self) -> dict:
        # memory-mapped studies are reopened in each loader worker, never pickled as copies
        state = dict(vars(self))
        if not self.in_memory:
            state["_open"] = {}
        return state

    def _study(self, patient: str, study: str) -> tuple:
        key = (patient, study)
        if key not in self._open:
            images, mask = study_files(self.store_dir, patient, study)
            self._open[key] = open_study(images, mask, self.modalities, self.image_size, mmap=not self.in_memory)
        return self._open[key]

    def __getitem__(self, index: int) -> dict:
        batch = self.__getitems__([index])
        return {"studies": batch["studies"][0], "masks": batch["masks"][0], "label": int(batch["label"][0]),
                "id": batch["id"][0], "clinical": batch["clinical"][0]}

    def __getitems__(self, indices: Sequence[int]) -> dict:
        """One batch, collated (the DataLoader's fetcher calls this with a batch's indices): every study is
        copied once, straight into the batch's tensor, pinned for the transfer when a GPU trains."""
        grid = tuple(self.image_size)
        # pinned only in the training process: a loader worker may not touch CUDA (to_device pins its batches)
        pin = self.pin_memory and get_worker_info() is None
        studies = torch.empty((len(indices), len(self.sides), len(self.modalities), *grid), dtype=torch.float16,
                              pin_memory=pin)
        masks = torch.empty((len(indices), len(self.sides), *grid), dtype=torch.bool)
        into, masks_into = studies.numpy(), masks.numpy()
        items = [self.items[i] for i in indices]
        for b, item in enumerate(items):
            for s, side in enumerate(self.sides):
                array, packed, channels = self._study(item["patient"], item[f"{side}_study"])
                into[b, s] = array if channels == list(range(len(array))) else array[channels]
                masks_into[b, s] = unpack_mask(packed, grid)
        return {
            "studies": studies,
            "masks": masks,
            "label": torch.as_tensor([item["label"] for item in items], dtype=torch.long),
            "id": [item["id"] for item in items],
            "clinical": torch.stack([torch.as_tensor(item["clinical"], dtype=torch.float32) for item in items]),
            # each study's enhancing-tumour volume (log1p cm^3; NaN: not known), targets of training.volume_loss
            "volumes": torch.as_tensor([[item.get(f"{side}_volume", float("nan")) for side in self.sides]
                                        for item in items], dtype=torch.float32),
        }

    def nbytes(self) -> int:
        """Bytes of the studies this dataset reads (the modalities it needs, masks packed)."""
        voxels = int(np.prod(self.image_size))
        studies = {(i["patient"], i[f"{side}_study"]) for i in self.items for side in self.sides}
        return len(studies) * (len(self.modalities) * voxels * 2 + (voxels + 7) // 8)


class DeviceBatches:
    """A loader's batches with their network input assembled on `device` (stack, subtract, stack_diff).

    A background thread reads the next batches and starts their transfer (PREFETCH ahead) while the device
    computes the current step; the studies are assembled into pairs on the device."""

    def __init__(self, loader: DataLoader, device: torch.device, input_mode: str, pair_mask: str) -> None:
        self.loader, self.device, self.input_mode, self.pair_mask = loader, device, input_mode, pair_mask

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[dict]:
        for batch in prefetched(self.loader, self.device):
            batch["image"] = assemble_pairs(batch.pop("studies"), batch.pop("masks"), self.input_mode, self.pair_mask)
            yield batch


def job_memory_bytes(memory_mb: int | None) -> int:
    """The job's memory: Snakemake's mem_mb where given, else the machine's physical memory."""
    if memory_mb:
        return int(memory_mb) * 2**20
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def in_memory(load: str, needed: int, memory_mb: int | None) -> bool:
    """Whether the store is read into memory (`load: auto`: when it takes at most MEMORY_SHARE of the job)."""
    if load not in LOAD_MODES:
        raise ValueError(f"unknown tensor_store.load {load!r}; choose from {LOAD_MODES}")
    if load != "auto":
        return load == "memory"
    return needed <= MEMORY_SHARE * job_memory_bytes(memory_mb)


def class_weights(labels: Sequence[int], n_classes: int = len(CLASSES)) -> torch.Tensor:
    """Inverse class frequency, normalised to mean 1 over the classes present (absent classes: 0)."""
    counts = np.bincount(np.asarray(labels, dtype=int), minlength=n_classes).astype(float)
    weights = np.where(counts > 0, 1.0 / np.maximum(counts, 1), 0.0)
    weights *= (counts > 0).sum() / weights.sum()
    return torch.as_tensor(weights, dtype=torch.float32)


def weighted_sampler(labels: Sequence[int], generator: torch.Generator) -> WeightedRandomSampler:
    """Draws pairs with probability inverse to their class frequency (classes equally likely)."""
    per_class = class_weights(labels)
    weights = per_class[torch.as_tensor(list(labels), dtype=torch.long)]
    return WeightedRandomSampler(weights.double(), num_samples=len(labels), replacement=True, generator=generator)


def study_volume_targets(volumes: pd.DataFrame) -> dict[tuple[str, str], float]:
    """(patient, study) -> log1p of the enhancing-tumour volume in cm^3, the scale of training.volume_loss
    (a relative change reads the same at every tumour size; no tumour is 0). Empty volumes are left out."""
    known = volumes[pd.to_numeric(volumes["enhancing_mm3"], errors="coerce").notna()]
    return {
        (row.patient, row.study): float(np.log1p(float(row.enhancing_mm3) / 1000.0))
        for row in known.itertuples()
    }


def add_volumes(items: list[dict], volumes: pd.DataFrame, references: Sequence[str]) -> None:
    """Set `<side>_volume` of every item whose study has a measured volume."""
    targets = study_volume_targets(volumes)
    for item in items:
        for side in sides(references):
            value = targets.get((item["patient"], item[f"{side}_study"]))
            if value is not None:
                item[f"{side}_volume"] = value


@dataclass
class FoldData:
    """Store datasets of one fold, the pairs left out of it and how batches become network inputs."""

    train: StoreDataset
    val: StoreDataset
    test: StoreDataset
    train_labels: list[int]
    items: dict[str, list[dict]]
    content: str  # fingerprint of every item's images, part of a resumable checkpoint's key
    left_out: pd.DataFrame
    clinical_dim: int
    input_mode: str = "stack"
    pair_mask: str = "intersection"

    def on_device(self, loader: DataLoader, device: torch.device) -> DeviceBatches:
        """The loader's batches with their pairs assembled on `device`."""
        return DeviceBatches(loader, device, self.input_mode, self.pair_mask)


def content_fingerprint(items: dict[str, list[dict]]) -> str:
    """SHA-256 of which pairs each split holds and the checksums of their studies' images (the current
    study and every reference the experiment reads: previous, baseline, nadir, ...), and their volume
    targets where training.volume_loss reads them."""
    content = {
        split: sorted(
            [i["id"], *(f"{key}={i[key]}" for key in sorted(i) if key.endswith(("_checksum", "_volume")))]
            for i in split_items
        )
        for split, split_items in items.items()
    }
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def fold_splits(folds: dict, fold: int) -> dict[str, list[str]]:
    entry = next((f for f in folds["folds"] if int(f["fold"]) == fold), None)
    if entry is None:
        raise ValueError(f"fold {fold} is not in folds.json (k={folds.get('k')})")
    return {split: list(entry[split]) for split in ("train", "val", "test")}


def prepare_data(
    experiment: dict,
    pairs: pd.DataFrame,
    manifest: pd.DataFrame,
    splits: dict[str, list[str]],
    store_dir: str | Path,
    load: str = "auto",
    memory_mb: int | None = None,
    volumes: pd.DataFrame | None = None,
) -> FoldData:
    """Items of each split over the tensor store (augmentation and pair assembly run on the batch); with
    `volumes` (study_volumes.tsv: patient, study, enhancing_mm3) each item carries its studies' volumes."""
    settings = experiment["training"]
    fields = experiment.get("clinical", [])
    references = experiment.get("references", ["previous"])
    items, left = {}, []
    for split, ids in splits.items():
        items[split], out = pair_items(
            pairs, manifest, ids, experiment["modalities"], fields, settings["use_flagged"], references
        )
        left.append(out.assign(split=split))
        if volumes is not None:
            add_volumes(items[split], volumes, references)
        if not items[split] and ids:
            raise ValueError(f"no usable pair in the {split} split (all {len(ids)} left out: {out['reason'].iloc[0]})")
    left_out = pd.concat(left, ignore_index=True)
    for row in left_out.itertuples():
        log.warning("left out %s (%s): %s", row.id, row.split, row.reason)

    opened: dict = {}

    def dataset(split_items: list[dict], memory: bool) -> StoreDataset:
        return StoreDataset(split_items, store_dir, experiment["modalities"], references, settings["image_size"],
                            memory, opened)

    every = [item for split_items in items.values() for item in split_items]
    needed = dataset(every, False).nbytes()
    memory = in_memory(load, needed, memory_mb)
    log.info("tensor store %s: %.2f GB of studies for %d pairs, %s", store_dir, needed / 1e9, len(every),
             "read into memory" if memory else "memory-mapped")
    return FoldData(
        train=dataset(items["train"], memory),
        val=dataset(items.get("val", []), memory),
        test=dataset(items.get("test", []), memory),
        train_labels=[i["label"] for i in items["train"]],
        items=items,
        content=content_fingerprint(items),
        left_out=left_out,
        clinical_dim=len(clinical.feature_names(fields)),
        input_mode=experiment["input"],
        pair_mask=settings["pair_mask"],
    )
