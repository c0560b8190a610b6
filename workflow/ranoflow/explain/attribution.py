"""Attribution maps (captum) of trained pair classifiers: the methods, their settings and the Grad-CAM layer."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from captum.attr import IntegratedGradients, LayerAttribution, LayerGradCam, Occlusion, Saliency
from torch import nn

log = logging.getLogger(__name__)

METHODS: tuple[str, ...] = ("saliency", "gradcam", "integrated_gradients", "occlusion")
TARGETS: tuple[str, ...] = ("predicted", "label")  # "label": the true class (pairs.tsv column)
# Methods whose map keeps one frame per input channel; Grad-CAM lives on a layer that mixes all channels.
PER_CHANNEL: frozenset[str] = frozenset({"saliency", "integrated_gradients", "occlusion"})


@dataclass(frozen=True)
class ExplainSettings:
    """The `explain` config section, minus the choice of experiments (that one is the workflow's)."""

    methods: tuple[str, ...] = ("saliency", "gradcam")
    layer: str | None = None
    n_per_class: int = 1
    targets: tuple[str, ...] = ("predicted",)
    ig_steps: int = 32
    ig_internal_batch_size: int = 4
    occlusion_window: int = 8
    occlusion_stride: int = 8
    figure: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = set(self.methods) - set(METHODS) | set(self.targets) - set(TARGETS)
        if unknown:
            raise ValueError(f"unknown explain methods/targets: {sorted(unknown)}")

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> ExplainSettings:
        ig = section.get("integrated_gradients", {})
        occlusion = section.get("occlusion", {})
        return cls(
            methods=tuple(section.get("methods", cls.methods)),
            layer=section.get("layer"),
            n_per_class=int(section.get("n_per_class", cls.n_per_class)),
            targets=tuple(section.get("targets", cls.targets)),
            ig_steps=int(ig.get("steps", cls.ig_steps)),
            ig_internal_batch_size=int(ig.get("internal_batch_size", cls.ig_internal_batch_size)),
            occlusion_window=int(occlusion.get("window", cls.occlusion_window)),
            occlusion_stride=int(occlusion.get("stride", cls.occlusion_stride)),
            figure=dict(section.get("figure", {})),
        )


def default_layer_name(model: nn.Module) -> str:
    """The last dense block (MONAI DenseNet), else the last ResNet stage, else the last convolution."""
    names = [name for name, module in model.named_modules() if type(module).__name__ == "_DenseBlock"]
    if not names:
        names = [name for name, _ in model.named_modules() if name.rsplit(".", 1)[-1] == "layer4"]
    if not names:
        names = [
            name
            for name, module in model.named_modules()
            if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d))
        ]
    if not names:
        raise ValueError("model has no dense block, ResNet stage or convolution for Grad-CAM; set explain.layer")
    return names[-1]


def resolve_layer(model: nn.Module, name: str | None) -> tuple[str, nn.Module]:
    """The named submodule (dotted path as in `model.named_modules()`), or the default Grad-CAM layer."""
    name = name or default_layer_name(model)
    modules = dict(model.named_modules())
    if name not in modules:
        raise KeyError(f"layer {name!r} not in the model; some of its layers: {list(modules)[-10:]}")
    return name, modules[name]


@torch.no_grad()
def predict_proba(model: nn.Module, image: torch.Tensor, extra: tuple[Any, ...] = ()) -> np.ndarray:
    """Softmax class probabilities for a batch of one."""
    return torch.softmax(model(image, *extra), dim=1)[0].cpu().numpy()


def attribute(
    model: nn.Module,
    image: torch.Tensor,
    target: int,
    method: str,
    settings: ExplainSettings,
    extra: tuple[Any, ...] = (),
) -> np.ndarray:
    """One map for a batch of one `image` (1, C, *spatial) and class index `target`.

    Returns (C, *spatial) for per-channel methods and (1, *spatial) for Grad-CAM (upsampled to the input
    grid); saliency is the absolute gradient, Grad-CAM keeps only positive evidence (ReLU), integrated
    gradients (zero baseline) and occlusion (zero patches) stay signed.
    """
    model.eval()
    image = image.detach().clone().requires_grad_(method != "occlusion")
    extra_args = extra if extra else None
    if method == "saliency":
        attr = Saliency(model).attribute(image, target=target, abs=True, additional_forward_args=extra_args)
    elif method == "gradcam":
        _, layer = resolve_layer(model, settings.layer)
        coarse = LayerGradCam(model, layer).attribute(
            image, target=target, relu_attributions=True, additional_forward_args=extra_args
        )
        if coarse.shape[0] != image.shape[0]:  # a shared encoder's layer sees each study: one map per study
            coarse = coarse.sum(dim=0, keepdim=True)
        if all(n == 1 for n in coarse.shape[2:]):
            log.warning("Grad-CAM layer %r has a 1-voxel output for this input size: its map is flat; "
                        "choose an earlier block with explain.layer", settings.layer or default_layer_name(model))
        attr = LayerAttribution.interpolate(coarse, tuple(image.shape[2:]), interpolate_mode="trilinear")
    elif method == "integrated_gradients":
        attr = IntegratedGradients(model).attribute(
            image,
            baselines=torch.zeros_like(image),
            target=target,
            n_steps=settings.ig_steps,
            internal_batch_size=settings.ig_internal_batch_size,
            additional_forward_args=extra_args,
        )
    elif method == "occlusion":
        spatial = image.ndim - 2
        attr = Occlusion(model).attribute(
            image,
            sliding_window_shapes=(1,) + (settings.occlusion_window,) * spatial,
            strides=(1,) + (settings.occlusion_stride,) * spatial,
            baselines=0.0,
            target=target,
            additional_forward_args=extra_args,
        )
    else:
        raise ValueError(f"unknown attribution method {method!r}; known: {METHODS}")
    return attr.detach()[0].float().cpu().numpy()
