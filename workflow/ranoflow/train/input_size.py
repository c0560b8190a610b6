"""The smallest network input each MONAI architecture takes, from its downsampling layers alone.

Pure Python (no torch), so the Snakefile checks training.image_size at parse time: a DenseNet264 fed
16^3 voxels otherwise fails inside torch, in every train job, without naming the setting.
Each strided layer is (kernel, stride, total padding); a layer needs its padded input at least as large
as its kernel. Mirrors monai.networks.nets (checked against the real networks in tests/train).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

# DenseNet: 7^3 stem conv (stride 2, padding 3), 3^3 max pool (stride 2, padding 1), then a 2^3
# average pool (stride 2, no padding) in the transition after every dense block but the last.
_DENSENET_BLOCKS = {"densenet121": 4, "densenet169": 4, "densenet201": 4, "densenet264": 4}
# EfficientNet-B0: TensorFlow-style "same" padding computed once for the design size 224, so a smaller
# input meets fixed paddings; the stride-2 layers (kernel) in order: stem, blocks 2, 3, 4 and 6.
_EFFICIENTNET_DESIGN = 224
_EFFICIENTNET_STRIDED = (3, 3, 5, 3, 5)


def _efficientnet_layers() -> list[tuple[int, int, int]]:
    layers, size = [], _EFFICIENTNET_DESIGN
    for kernel in _EFFICIENTNET_STRIDED:
        layers.append((kernel, 2, max((math.ceil(size / 2) - 1) * 2 + kernel - size, 0)))
        size = math.ceil(size / 2)
    return layers


def downsampling(architecture: str, model_kwargs: Mapping | None = None) -> list[tuple[int, int, int]]:
    """(kernel, stride, total padding) of each layer of `architecture` that can refuse a small input."""
    kwargs = model_kwargs or {}
    if architecture in _DENSENET_BLOCKS:
        blocks = len(kwargs.get("block_config") or range(_DENSENET_BLOCKS[architecture]))
        return [(7, 2, 6), (3, 2, 2), *[(2, 2, 0)] * (blocks - 1)]
    if architecture == "efficientnet-b0":
        return _efficientnet_layers()
    return []  # ResNets pad every strided layer; the ViT is checked on its patch size


def _passes(size: int, layers: Sequence[tuple[int, int, int]]) -> bool:
    for kernel, stride, padding in layers:
        if size + padding < kernel:
            return False
        size = (size + padding - kernel) // stride + 1
    return True


def minimum_size(architecture: str, model_kwargs: Mapping | None = None) -> int:
    """The fewest voxels per axis `architecture` accepts (the ViT: one patch)."""
    if architecture == "vit":
        return int((model_kwargs or {}).get("patch_size", 16))
    layers = downsampling(architecture, model_kwargs)
    size = 1
    while not _passes(size, layers):
        size += 1
    return size


def image_size_problem(architecture: str, image_size: Sequence[int], model_kwargs: Mapping | None, key: str) -> str | None:
    """One line when `image_size` (set at config key `key`) is too small for `architecture`, else None."""
    least = minimum_size(architecture, model_kwargs)
    if min(image_size) < least:
        steps = len(downsampling(architecture, model_kwargs))
        return (f"{key} {list(image_size)} is too small for {architecture}: its {steps} downsampling layers need at "
                f"least {least} voxels per axis (allowed: image_size >= [{least}, {least}, {least}], or a smaller network)")
    return None
