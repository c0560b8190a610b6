"""One experiment's fold models as a single `torch.export` program that loads without this workflow's code.

`model.pt2` (`torch.export.load(path).module()`) maps (image, clinical) to the class probabilities of every fold model, shape
(folds, batch, classes); the rating is their mean. `model.json`, written beside it and embedded in the
program file as an extra file of the same name, says what the input must be: channel order, class order,
image size, how the pair was assembled and preprocessed, and the atlas it was registered to (checksums).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import nn

from ranoflow.train import clinical
from ranoflow.train.metadata import run_metadata
from ranoflow.vocabulary import CLASSES

CARD_NAME = "model.json"
FORMAT = "ranoflow-export/1"


class FoldEnsemble(nn.Module):
    """Softmax probabilities of each fold model, stacked: (folds, batch, classes)."""

    def __init__(self, models: Sequence[nn.Module], clinical_dim: int) -> None:
        super().__init__()
        self.folds = nn.ModuleList(models)
        self.clinical_dim = clinical_dim

    def forward(self, image: torch.Tensor, clinical_features: torch.Tensor) -> torch.Tensor:
        extra = clinical_features if self.clinical_dim else None
        return torch.stack([torch.softmax(model(image, extra), dim=1) for model in self.folds])


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_card(
    resolved: dict,
    folds: Sequence[int],
    preprocessing: Mapping,
    atlas: Mapping[str, str | Path],
    grid: Mapping | None = None,
) -> dict:
    """What a user needs to feed the exported model: the input's layout and how it was made."""
    training = resolved["training"]
    return {
        "format": FORMAT,
        "experiment": resolved["name"],
        "architecture": resolved["architecture"],
        "classes": list(CLASSES),
        "output": "probabilities, shape (folds, batch, classes); the rating is the mean over folds",
        "folds": list(folds),
        "input": {
            "image_shape": [resolved["in_channels"], *training["image_size"]],
            "channels": list(resolved["channels"]),
            "mode": resolved["input"],
            "modalities": list(resolved["modalities"]),
            "references": list(resolved.get("references", ["previous"])),
            "fit": training["fit"],
            "clinical_features": clinical.feature_names(resolved["clinical"]),
            "clinical_encoding": "numbers scaled (age/100, weeks/52), categories one-hot, a missing "
            "indicator after each field",
        },
        "preprocessing": dict(preprocessing),
        # the training grid (the tensor store's grid.json): the crop of the atlas box and the fit to image_size
        "grid": dict(grid or {}),
        "atlas": {name: {"file": Path(path).name, "sha256": file_sha256(path)} for name, path in atlas.items()},
        "experiment_settings": resolved,
        "environment": {k: v for k, v in run_metadata({}, torch.device("cpu"), 1).items() if k != "threads"},
    }


def example_inputs(resolved: dict, batch: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero tensors of the exported model's input shapes (the trace's examples)."""
    size = resolved["training"]["image_size"]
    width = len(clinical.feature_names(resolved["clinical"]))
    return torch.zeros(batch, resolved["in_channels"], *size), torch.zeros(batch, width)


def export_ensemble(models: Sequence[nn.Module], resolved: dict, card: dict, out: str | Path) -> Path:
    """Export the fold ensemble (any batch size) and save it with its card embedded; returns its path."""
    width = len(clinical.feature_names(resolved["clinical"]))
    ensemble = FoldEnsemble([m.cpu().eval() for m in models], width).eval()
    batch = torch.export.Dim("batch")
    with torch.no_grad():
        program = torch.export.export(
            ensemble, example_inputs(resolved), dynamic_shapes=({0: batch}, {0: batch})
        )
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(card, indent=2)
    torch.export.save(program, out, extra_files={CARD_NAME: text})
    (out.parent / CARD_NAME).write_text(text)
    return out


def load_export(path: str | Path) -> tuple[nn.Module, dict]:
    """The exported ensemble as a callable module and its model card."""
    extra = {CARD_NAME: ""}
    program = torch.export.load(Path(path), extra_files=extra)
    return program.module(), json.loads(extra[CARD_NAME])
