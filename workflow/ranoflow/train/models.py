"""3D classifiers from MONAI, with optional clinical-data fusion before the final linear layer."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from monai.networks import nets
from torch import nn

from ranoflow.train.pair_items import sides
from ranoflow.vocabulary import CLASSES

log = logging.getLogger(__name__)

DENSENETS = {
    "densenet121": nets.DenseNet121,
    "densenet169": nets.DenseNet169,
    "densenet201": nets.DenseNet201,
    "densenet264": nets.DenseNet264,
}
RESNETS = {"resnet10": nets.resnet10, "resnet18": nets.resnet18, "resnet50": nets.resnet50}
ARCHITECTURES = (*DENSENETS, *RESNETS, "efficientnet-b0", "vit")


class WeightsShapeError(ValueError):
    """A weights file does not fit the network it is loaded into."""


NORMS = {"batch": "batch", "instance": ("instance", {"affine": True}), "group": ("group", {"num_groups": 1})}  # one group: fits every layer width


def build_backbone(
    architecture: str,
    in_channels: int,
    image_size: list[int],
    model_kwargs: dict | None = None,
    norm: str | None = None,
    stem_pool: bool = True,
) -> tuple[nn.Module, int]:
    """A MONAI network without its last linear layer, and the width of the features it returns.

    `norm` (batch, instance, group) replaces the normalisation layers of DenseNets and ResNets; `stem_pool`
    False drops a DenseNet's max-pool after its first convolution."""
    kwargs = dict(model_kwargs or {})
    if norm is not None:
        if architecture not in DENSENETS and architecture not in RESNETS:
            raise ValueError(f"training.norm is for DenseNet and ResNet backbones, not {architecture!r}")
        kwargs["norm"] = NORMS[norm]
    if not stem_pool and architecture not in DENSENETS:
        raise ValueError(f"training.stem_pool false is for DenseNet backbones, not {architecture!r}")
    if architecture in DENSENETS:
        net = DENSENETS[architecture](spatial_dims=3, in_channels=in_channels, out_channels=1, **kwargs)
        dim = net.class_layers.out.in_features
        net.class_layers.out = nn.Identity()
        if not stem_pool:
            net.features.pool0 = nn.Identity()
    elif architecture in RESNETS:
        # conv1_t_stride=2: MONAI's default stride 1 on the first axis makes 3D ResNets 5-15x slower.
        kwargs.setdefault("conv1_t_stride", 2)
        net = RESNETS[architecture](spatial_dims=3, n_input_channels=in_channels, num_classes=1, **kwargs)
        dim = net.fc.in_features
        net.fc = nn.Identity()
    elif architecture == "efficientnet-b0":
        net = nets.EfficientNetBN(
            "efficientnet-b0", pretrained=False, spatial_dims=3, in_channels=in_channels, num_classes=1, **kwargs
        )
        dim = net._fc.in_features
        net._fc = nn.Identity()
    elif architecture == "vit":
        kwargs.setdefault("patch_size", 16)
        net = nets.ViT(
            in_channels=in_channels, img_size=list(image_size), classification=True, num_classes=1, **kwargs
        )
        head = net.classification_head
        dim = (head[0] if isinstance(head, nn.Sequential) else head).in_features
        net.classification_head = nn.Identity()
    else:
        raise ValueError(f"unknown architecture {architecture!r}; choose from {list(ARCHITECTURES)}")
    return net, dim


class PairClassifier(nn.Module):
    """Image backbone features, optionally concatenated with a small MLP of clinical data, then a linear head."""

    channels_last = False  # training.channels_last, set by model_for

    def __init__(
        self, backbone: nn.Module, feature_dim: int, n_classes: int, clinical_dim: int = 0, clinical_hidden: int = 16
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.clinical = (
            nn.Sequential(
                nn.Linear(clinical_dim, clinical_hidden),
                nn.ReLU(inplace=True),
                nn.Linear(clinical_hidden, clinical_hidden),
                nn.ReLU(inplace=True),
            )
            if clinical_dim
            else None
        )
        self.head = nn.Linear(feature_dim + (clinical_hidden if clinical_dim else 0), n_classes)

    def backbone_input(self, image: torch.Tensor) -> torch.Tensor:
        """The backbone's input in the configured memory layout (the values are the same either way)."""
        if self.channels_last and image.dim() == 5:
            return image.contiguous(memory_format=torch.channels_last_3d)
        return image

    def features(self, image: torch.Tensor) -> torch.Tensor:
        out = self.backbone(self.backbone_input(image))
        return out[0] if isinstance(out, tuple) else out  # ViT returns (features, hidden states)

    def forward(self, image: torch.Tensor, clinical: torch.Tensor | None = None) -> torch.Tensor:
        return self.rate(self.features(image), clinical)

    def rate(self, feats: torch.Tensor, clinical: torch.Tensor | None = None) -> torch.Tensor:
        """The head's logits from the image features (and clinical data); training.refit_head_steps fits this part."""
        if self.clinical is not None:
            if clinical is None:
                raise ValueError("this model fuses clinical data: pass the clinical tensor")
            feats = torch.cat([feats, self.clinical(clinical.to(feats.dtype))], dim=1)
        return self.head(feats)


class SharedEncoderClassifier(PairClassifier):
    """One backbone, shared by the pair's studies, reads each study on its own; the head sees the current
    study's features and their difference to each reference's, so which study is current is built in.

    The input is the stacked pair (batch, studies x modalities, *grid), study-major as `input: stack` lays it
    out. With `volume_head` a linear layer regresses each study's enhancing-tumour volume (log1p of cm^3)
    from that study's features; `last_volumes` holds the latest forward pass's (batch, studies) estimates
    for the training loss. `head` volumes rates from those estimates alone (the current study's and its
    differences to each reference's), a concept bottleneck; features rates from the studies' features."""

    def __init__(
        self,
        backbone: nn.Module,
        feature_dim: int,
        n_classes: int,
        n_studies: int,
        clinical_dim: int = 0,
        clinical_hidden: int = 16,
        volume_head: bool = False,
        head: str = "features",
    ) -> None:
        width = feature_dim * n_studies if head == "features" else 2 * n_studies - 1
        super().__init__(backbone, width, n_classes, clinical_dim, clinical_hidden)
        self.n_studies = n_studies
        self.volume = nn.Linear(feature_dim, 1) if volume_head else None
        self.last_volumes: torch.Tensor | None = None
        self.reads = head
        if head == "volumes":
            # a concept bottleneck: the rating is a small function of the studies' volume estimates
            inputs = width + (clinical_hidden if clinical_dim else 0)
            self.head = nn.Sequential(nn.Linear(inputs, VOLUME_HEAD_WIDTH), nn.ReLU(inplace=True),
                                      nn.Linear(VOLUME_HEAD_WIDTH, n_classes))

    def features(self, image: torch.Tensor) -> torch.Tensor:
        batch, channels = image.shape[:2]
        if channels % self.n_studies:
            raise ValueError(f"{channels} input channels do not split into {self.n_studies} studies")
        per_study = image.reshape(batch * self.n_studies, channels // self.n_studies, *image.shape[2:])
        out = self.backbone(self.backbone_input(per_study))
        feats = (out[0] if isinstance(out, tuple) else out).reshape(batch, self.n_studies, -1)
        if self.volume is not None:
            volumes = self.volume(feats).squeeze(-1)
            if self.training:  # only the training loss reads them (an export may not set attributes)
                self.last_volumes = volumes
            if self.reads == "volumes":
                return torch.cat([volumes, volumes[:, :1] - volumes[:, 1:]], dim=1)
        current = feats[:, 0]
        return torch.cat([current, (current[:, None] - feats[:, 1:]).flatten(1)], dim=1)


ENCODERS = ("joint", "shared")
VOLUME_HEAD_WIDTH = 32


def build_model(
    architecture: str,
    in_channels: int,
    n_classes: int,
    image_size: list[int],
    clinical_dim: int = 0,
    clinical_hidden: int = 16,
    model_kwargs: dict | None = None,
    norm: str | None = None,
    stem_pool: bool = True,
    encoder: str = "joint",
    n_studies: int = 2,
    volume_head: bool = False,
    head: str = "features",
) -> PairClassifier:
    """The classifier of one experiment: `encoder` joint reads all channels in one backbone, shared reads each
    of the `n_studies` studies with one backbone (SharedEncoderClassifier)."""
    if encoder not in ENCODERS:
        raise ValueError(f"unknown training.encoder {encoder!r}; choose from {ENCODERS}")
    if encoder == "joint":
        if volume_head or head != "features":
            raise ValueError("training.volume_loss and head volumes need training.encoder: shared (a volume per study)")
        backbone, dim = build_backbone(architecture, in_channels, image_size, model_kwargs, norm, stem_pool)
        return PairClassifier(backbone, dim, n_classes, clinical_dim, clinical_hidden)
    if head == "volumes" and not volume_head:
        raise ValueError("training.head volumes reads the volume estimates: set training.volume_loss above 0")
    backbone, dim = build_backbone(architecture, in_channels // n_studies, image_size, model_kwargs, norm, stem_pool)
    return SharedEncoderClassifier(backbone, dim, n_classes, n_studies, clinical_dim, clinical_hidden, volume_head,
                                   head)


def model_for(resolved: dict, clinical_dim: int) -> PairClassifier:
    """The network of a resolved experiment (as the train job resolves it and metadata.json records it)."""
    training = resolved["training"]
    model = build_model(
        resolved["architecture"],
        resolved["in_channels"],
        len(CLASSES),
        training["image_size"],
        clinical_dim,
        training["clinical_hidden"],
        training["model_kwargs"],
        norm=training.get("norm"),
        stem_pool=training.get("stem_pool", True),
        encoder=training.get("encoder", "joint"),
        n_studies=len(sides(resolved.get("references"))),
        volume_head=training.get("volume_loss", 0.0) > 0,
        head=training.get("head", "features"),
    )
    model.channels_last = bool(training.get("channels_last", False))
    return model


def _strip_prefixes(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in state.items():
        for prefix in ("module.", "backbone."):
            if key.startswith(prefix):
                key = key[len(prefix) :]
        out[key] = value
    return out


def load_backbone_weights(backbone: nn.Module, path: str | Path) -> dict[str, list[str]]:
    """Load a state dict (e.g. MedicalNet, or a `pretrain` job's output) into a backbone.

    The file is read with weights_only=True. Tensors are matched by name after stripping `module.`
    and `backbone.` prefixes; any shape mismatch is an error naming every mismatched tensor, and so
    is a file that shares no tensor name with the network. Layers absent from the file keep their
    initialisation (returned under `missing`).
    """
    state = torch.load(Path(path), map_location="cpu", weights_only=True)
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise WeightsShapeError(f"{path}: expected a state dict, found {type(state).__name__}")
    state = _strip_prefixes(state)
    own = backbone.state_dict()
    common = [k for k in state if k in own]
    if not common:
        raise WeightsShapeError(
            f"{path}: no tensor name in common with the {type(backbone).__name__} backbone "
            f"(file has e.g. {list(state)[:3]}, network has e.g. {list(own)[:3]})"
        )
    mismatched = [
        f"{k}: file {tuple(state[k].shape)} vs network {tuple(own[k].shape)}"
        for k in common
        if tuple(state[k].shape) != tuple(own[k].shape)
    ]
    if mismatched:
        raise WeightsShapeError(
            f"{path} does not fit the {type(backbone).__name__} backbone ({len(mismatched)} tensor(s) differ; "
            "check architecture and number of input channels): " + "; ".join(mismatched[:10])
        )
    backbone.load_state_dict({k: state[k] for k in common}, strict=False)
    report = {"loaded": common, "missing": [k for k in own if k not in state], "unused": [k for k in state if k not in own]}
    log.info(
        "loaded %d tensors from %s (%d network tensors not in the file, %d file tensors unused)",
        len(common), path, len(report["missing"]), len(report["unused"]),
    )
    return report


def load_trained_model(resolved: dict, state_path: str | Path, device: str | torch.device = "cpu") -> PairClassifier:
    """A train job's network (same factory and arguments as ranoflow.train.fold) with its saved weights,
    in eval mode; `resolved` is the experiment as its metadata.json records it."""
    from ranoflow.train import clinical

    model = model_for(resolved, len(clinical.feature_names(resolved["clinical"])))
    model.load_state_dict(torch.load(Path(state_path), map_location="cpu", weights_only=True))
    return model.to(device).eval()
