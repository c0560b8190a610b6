"""Pairs of preprocessed studies as MONAI datasets: one network input per pair, cached after preprocessing."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Hashable, Mapping, Sequence
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from monai import transforms as mt
from monai.data import CacheDataset, Dataset, PersistentDataset
from torch.utils.data import Subset, WeightedRandomSampler

from . import clinical as clin
from .experiments import canonical_modalities

log = logging.getLogger(__name__)

CLASSES = ("CR", "PR", "SD", "PD")
USABLE_STATUS = {"ok", "flagged"}
CACHE_VERSION = 1  # bump when preprocess_transform changes, so disk caches are rebuilt


def _key(side: str, modality: str) -> str:
    return f"{side}_{modality}"


def pair_items(
    pairs: pd.DataFrame,
    manifest: pd.DataFrame,
    ids: Sequence[str],
    modalities: list[str],
    clinical_fields: list[str],
    use_flagged: bool = True,
) -> tuple[list[dict], pd.DataFrame]:
    """Dataset items for the pairs `ids`, and the pairs left out (id, reason).

    A pair is left out when a study failed preprocessing (or is flagged and flagged studies are not
    used), or when either study lacks a modality the experiment needs.
    """
    mods = canonical_modalities(modalities)
    usable = USABLE_STATUS if use_flagged else {"ok"}
    studies = {(r["patient"], r["study"]): r for r in manifest.to_dict("records")}
    by_id = pairs.set_index("id", drop=False)
    items, left_out = [], []
    for pair_id in ids:
        row = by_id.loc[pair_id]
        item = {"id": pair_id, "patient": row["patient"], "label": CLASSES.index(row["label"])}
        reason = ""
        for side in ("current", "previous"):
            study = studies.get((row["patient"], row[side]))
            if study is None:
                reason = f"{side} study {row[side]} not in the preprocessing manifest"
                break
            if study["status"] not in usable:
                reason = f"{side} study {row[side]} preprocessing status {study['status']}"
                break
            directory = Path(study["dir"])
            missing = [m for m in mods if not (directory / f"{m}.nii.gz").is_file()]
            if missing:
                reason = f"{side} study {row[side]} lacks {','.join(missing)}"
                break
            for m in mods:
                item[_key(side, m)] = str(directory / f"{m}.nii.gz")
            item[f"{side}_mask"] = str(directory / "brain_mask.nii.gz")
        if reason:
            left_out.append({"id": pair_id, "reason": reason})
            continue
        item["clinical"] = clin.encode(row.to_dict(), clinical_fields)
        items.append(item)
    return items, pd.DataFrame(left_out, columns=["id", "reason"])


class CombinePaird(mt.MapTransform):
    """The network input from the current and previous study: channels stacked or subtracted."""

    def __init__(self, input_mode: str, output_key: str = "image") -> None:
        super().__init__(keys=["current", "previous"])
        if input_mode not in ("stack", "subtract"):
            raise ValueError(f"unknown input {input_mode!r}")
        self.input_mode = input_mode
        self.output_key = output_key

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict:
        d = dict(data)
        current, previous = d.pop("current"), d.pop("previous")
        if self.input_mode == "stack":
            d[self.output_key] = torch.cat([current, previous], dim=0)
        else:
            d[self.output_key] = current - previous
        return d


def preprocess_transform(modalities: list[str], input_mode: str, image_size: list[int], fit: str) -> mt.Compose:
    """Deterministic part (cached): load, combine, crop to the union brain mask, fit to image_size."""
    mods = canonical_modalities(modalities)
    current, previous = [_key("current", m) for m in mods], [_key("previous", m) for m in mods]
    masks = ["current_mask", "previous_mask"]
    fit_transform = (
        mt.Resized(keys="image", spatial_size=image_size, mode="trilinear", anti_aliasing=True)
        if fit == "resize"
        else mt.ResizeWithPadOrCropd(keys="image", spatial_size=image_size)
    )
    return mt.Compose(
        [
            mt.LoadImaged(keys=current + previous + masks, ensure_channel_first=True, image_only=True),
            mt.ConcatItemsd(keys=current, name="current"),
            mt.ConcatItemsd(keys=previous, name="previous"),
            mt.ConcatItemsd(keys=masks, name="mask"),
            CombinePaird(input_mode),
            mt.CropForegroundd(
                keys="image", source_key="mask", allow_smaller=True, start_coord_key=None, end_coord_key=None
            ),
            fit_transform,
            mt.EnsureTyped(keys="image", dtype=torch.float32, track_meta=False),
            mt.EnsureTyped(keys="clinical", dtype=torch.float32, track_meta=False),
            mt.DeleteItemsd(keys=current + previous + masks + ["mask"]),
        ]
    )


class BatchAugment:
    """The paper's augmentations, drawn per sample and applied to a whole batch on its device.

    Same formulas as MONAI's RandFlip (per axis), RandScaleIntensity (x (1 + U(-f, f))),
    RandAdjustContrast (gamma on the min-max range, here per channel) and RandGaussianNoise
    (std ~ U(0, noise_std)). Gamma is a contrast change of an MR image: on a difference image
    (input subtract) it would move the zero level, so it is applied to stacked inputs only.
    Running them as torch ops on the training device instead of as per-item MONAI transforms in the
    loader matters at 128^3: there MONAI's numpy noise and gamma take about a second per item on a CPU
    core, longer than a GPU step.
    """

    def __init__(self, augment: dict, gamma: bool = True) -> None:
        self.settings = augment
        self.gamma = gamma
        self.params = torch.Generator()
        self.noise: dict[torch.device, torch.Generator] = {}
        self.reseed(0)

    def reseed(self, seed: int) -> None:
        """Fix every draw of the next batches (called at the start of each epoch)."""
        self.seed = seed
        self.params.manual_seed(seed)
        self.noise.clear()

    def _uniform(self, low: float = 0.0, high: float = 1.0) -> float:
        return low + (high - low) * float(torch.rand((), generator=self.params))

    def _noise_generator(self, device: torch.device) -> torch.Generator:
        if device not in self.noise:
            self.noise[device] = torch.Generator(device=device).manual_seed(self.seed + 1)
        return self.noise[device]

    @torch.no_grad()
    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        a = self.settings
        out = []
        for x in image:
            for axis in range(1, x.dim()):
                if self._uniform() < a["flip_prob"]:
                    x = torch.flip(x, dims=(axis,))
            if self._uniform() < a["scale_intensity_prob"]:
                f = a["scale_intensity_factor"]
                x = x * (1 + self._uniform(-f, f))
            if self._uniform() < a["gamma_prob"] and self.gamma:
                gamma = self._uniform(*a["gamma_range"])
                spatial = tuple(range(1, x.dim()))
                low = x.amin(dim=spatial, keepdim=True)
                span = x.amax(dim=spatial, keepdim=True) - low
                x = ((x - low) / (span + 1e-7)) ** gamma * span + low
            if self._uniform() < a["noise_prob"]:
                std = self._uniform(0, a["noise_std"])
                x = x + std * torch.randn(x.shape, generator=self._noise_generator(x.device), device=x.device)
            out.append(x)
        return torch.stack(out).to(image.dtype)


def cached_dataset(
    items: list[dict],
    transform: mt.Compose,
    cache: str,
    cache_dir: str | Path | None = None,
    num_workers: int = 0,
    cache_key: str = "",
) -> Dataset:
    """Items after the deterministic transform, kept in memory, on disk or recomputed every time.

    On disk, files are keyed by the item and `cache_key` (the settings the transform was built from),
    so that jobs with the same inputs share them and changed settings never read stale tensors.
    """
    if cache == "memory":
        return CacheDataset(items, transform, cache_rate=1.0, num_workers=num_workers or None, progress=False)
    if cache == "disk":
        if cache_dir is None:
            raise ValueError("cache 'disk' needs a cache_dir")
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        key = hashlib.sha256(f"{CACHE_VERSION}:{cache_key}".encode()).hexdigest().encode()
        return PersistentDataset(items, transform, cache_dir=cache_dir, hash_transform=partial(_constant, key))
    if cache == "none":
        return Dataset(items, transform)
    raise ValueError(f"unknown cache {cache!r}")


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
