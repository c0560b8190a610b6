"""The deterministic part of a pair's network input (cached): load its studies, combine them, crop, fit."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import torch
from monai import transforms as mt

from ranoflow.train.experiments import canonical_modalities
from ranoflow.train.pair_items import image_key, sides


class CombinePaird(mt.MapTransform):
    """The network input from the current study and its reference studies: all stacked as channels, or
    current minus each reference in turn (the order of experiments.channel_names)."""

    def __init__(self, input_mode: str, references: Sequence[str] = ("previous",), output_key: str = "image") -> None:
        super().__init__(keys=["current", *references])
        if input_mode not in ("stack", "subtract"):
            raise ValueError(f"unknown input {input_mode!r}")
        self.input_mode = input_mode
        self.references = list(references)
        self.output_key = output_key

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict:
        d = dict(data)
        current = d.pop("current")
        references = [d.pop(ref) for ref in self.references]
        if self.input_mode == "stack":
            d[self.output_key] = torch.cat([current, *references], dim=0)
        else:
            d[self.output_key] = torch.cat([current - ref for ref in references], dim=0)
        return d


def preprocess_transform(
    modalities: list[str],
    input_mode: str,
    image_size: list[int],
    fit: str,
    references: Sequence[str] | None = None,
) -> mt.Compose:
    """Deterministic part (cached): load, combine, crop to the union brain mask, fit to image_size."""
    mods = canonical_modalities(modalities)
    studies = sides(references)
    images = {side: [image_key(side, m) for m in mods] for side in studies}
    masks = [f"{side}_mask" for side in studies]
    loaded = [key for keys in images.values() for key in keys]
    fit_transform = (
        mt.Resized(keys="image", spatial_size=image_size, mode="trilinear", anti_aliasing=True)
        if fit == "resize"
        else mt.ResizeWithPadOrCropd(keys="image", spatial_size=image_size)
    )
    return mt.Compose(
        [
            mt.LoadImaged(keys=[*loaded, *masks], ensure_channel_first=True, image_only=True),
            *[mt.ConcatItemsd(keys=keys, name=side) for side, keys in images.items()],
            mt.ConcatItemsd(keys=masks, name="mask"),
            CombinePaird(input_mode, studies[1:]),
            mt.CropForegroundd(
                keys="image", source_key="mask", allow_smaller=True, start_coord_key=None, end_coord_key=None
            ),
            fit_transform,
            mt.EnsureTyped(keys="image", dtype=torch.float32, track_meta=False),
            mt.EnsureTyped(keys="clinical", dtype=torch.float32, track_meta=False),
            mt.DeleteItemsd(keys=[*loaded, *masks, "mask"]),
        ]
    )
