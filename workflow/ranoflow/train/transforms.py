"""The deterministic part of a pair's network input (cached): load both studies, combine them, crop, fit."""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import torch
from monai import transforms as mt

from ranoflow.train.experiments import canonical_modalities
from ranoflow.train.pair_items import image_key


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
    current, previous = [image_key("current", m) for m in mods], [image_key("previous", m) for m in mods]
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
