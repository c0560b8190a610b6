"""A fold's pairs as MONAI datasets: items of each split, one cache of their inputs, class-balanced sampling."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from monai import transforms as mt
from monai.data import CacheDataset, Dataset, PersistentDataset
from torch.utils.data import Subset, WeightedRandomSampler

from ranoflow.train import clinical
from ranoflow.train.pair_items import pair_items
from ranoflow.train.transforms import preprocess_transform
from ranoflow.vocabulary import CLASSES

log = logging.getLogger(__name__)

CACHE_VERSION = 1  # bump when preprocess_transform changes, so disk caches are rebuilt


def cached_dataset(
    items: list[dict],
    transform: mt.Compose,
    cache: str,
    cache_dir: str | Path | None = None,
    num_workers: int = 0,
    cache_key: str = "",
) -> Dataset:
    """Items after the deterministic transform, kept in memory, on disk or recomputed every time.

    On disk, files are keyed by the item (its image paths and their studies' checksums) and `cache_key`
    (the settings the transform was built from), so that jobs with the same inputs share them and changed
    images or settings never read stale tensors.
    """
    if cache == "memory":
        return CacheDataset(items, transform, cache_rate=1.0, num_workers=num_workers or None, progress=False)
    if cache == "disk":
        if cache_dir is None:
            raise ValueError("cache 'disk' needs a cache_dir")
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        key = hashlib.sha256(f"{CACHE_VERSION}:{cache_key}".encode()).hexdigest().encode()
        dataset = PersistentDataset(items, transform, cache_dir=cache_dir, hash_transform=partial(_constant, key))
        missing = _not_cached(dataset, items)
        if missing:
            log.info("disk cache %s: building %d of %d pairs (new pairs, changed preprocessed images or settings)",
                     cache_dir, missing, len(items))
        return dataset
    if cache == "none":
        return Dataset(items, transform)
    raise ValueError(f"unknown cache {cache!r}")


def _not_cached(dataset: PersistentDataset, items: list[dict]) -> int:
    """How many items have no cache file yet (named as PersistentDataset names them)."""
    names = (f"{dataset.hash_func(item).decode()}{dataset.transform_hash}.pt" for item in items)
    return sum(not (dataset.cache_dir / name).is_file() for name in names)


def _constant(value: bytes, _transform: object) -> bytes:
    return value


def view(dataset: Dataset, indices: Sequence[int], transform: mt.Compose | None = None) -> Dataset:
    """A subset of a cached dataset, optionally with (random) transforms applied on top."""
    return Dataset(Subset(dataset, list(indices)), transform)


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


@dataclass
class FoldData:
    """Cached datasets of one fold and the pairs left out of it."""

    train: Dataset
    val: Dataset
    test: Dataset
    train_labels: list[int]
    items: dict[str, list[dict]]
    content: str  # fingerprint of every item's images, part of a resumable checkpoint's key
    left_out: pd.DataFrame
    clinical_dim: int


def content_fingerprint(items: dict[str, list[dict]]) -> str:
    """SHA-256 of which pairs each split holds and the checksums of their studies' images (the current
    study and every reference the experiment reads: previous, baseline, nadir, ...)."""
    content = {
        split: sorted(
            [i["id"], *(f"{key}={i[key]}" for key in sorted(i) if key.endswith("_checksum"))] for i in split_items
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
    experiment: dict, pairs: pd.DataFrame, manifest: pd.DataFrame, splits: dict[str, list[str]], threads: int = 0
) -> FoldData:
    """Items of each split and one cache of their preprocessed tensors (augmentation runs on the batch)."""
    settings = experiment["training"]
    fields = experiment.get("clinical", [])
    references = experiment.get("references", ["previous"])
    items, left = {}, []
    for split, ids in splits.items():
        items[split], out = pair_items(
            pairs, manifest, ids, experiment["modalities"], fields, settings["use_flagged"], references
        )
        left.append(out.assign(split=split))
        if not items[split] and ids:
            raise ValueError(f"no usable pair in the {split} split (all {len(ids)} left out: {out['reason'].iloc[0]})")
    left_out = pd.concat(left, ignore_index=True)
    for row in left_out.itertuples():
        log.warning("left out %s (%s): %s", row.id, row.split, row.reason)

    unique: dict[str, dict] = {}
    for split_items in items.values():
        for item in split_items:
            unique.setdefault(item["id"], item)
    order = list(unique)
    cache_dir = Path(settings["cache_dir"]) / "pairs"
    transform = preprocess_transform(
        experiment["modalities"], experiment["input"], settings["image_size"], settings["fit"], references
    )
    t0 = time.perf_counter()
    cache_key = json.dumps(
        [experiment["modalities"], experiment["input"], settings["image_size"], settings["fit"], references],
        sort_keys=True,
    )
    cached = cached_dataset(
        [unique[i] for i in order], transform, settings["cache"], cache_dir, threads, cache_key
    )
    log.info("prepared %d pairs (%s cache) in %.1f s", len(order), settings["cache"], time.perf_counter() - t0)
    index = {pair_id: i for i, pair_id in enumerate(order)}
    return FoldData(
        train=view(cached, [index[i["id"]] for i in items["train"]]),
        val=view(cached, [index[i["id"]] for i in items["val"]]),
        test=view(cached, [index[i["id"]] for i in items["test"]]),
        train_labels=[i["label"] for i in items["train"]],
        items=items,
        content=content_fingerprint(items),
        left_out=left_out,
        clinical_dim=len(clinical.feature_names(fields)),
    )
