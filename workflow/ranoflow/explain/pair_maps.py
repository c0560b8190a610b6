"""Explains chosen test pairs of one trained model: NIfTI maps on the atlas grid, PNGs and scores."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import torch
from torch import nn

from ranoflow.explain.attribution import PER_CHANNEL, ExplainSettings, attribute, predict_proba
from ranoflow.explain.figures import Panel, render_explanation
from ranoflow.explain.overlap import NOT_APPLICABLE, OverlapScores, group_share, overlap_scores, tumour_mask, union_mask
from ranoflow.explain.selection import explanation_targets
from ranoflow.vocabulary import CLASSES, MODALITIES

log = logging.getLogger(__name__)


@dataclass
class PairInput:
    """A pair as the model sees it, and the way back from the model's grid to the atlas grid."""

    image: torch.Tensor  # (1, C, *model grid)
    channels: list[str]  # one name per channel, e.g. "T1 current"
    groups: list[str]  # per channel: the study ("current", "previous", "nadir", ...) or "difference"
    to_atlas: Callable[[np.ndarray], np.ndarray]  # (K, *model grid) -> (K, *atlas grid)
    extra: tuple[object, ...] = ()  # further forward arguments (clinical features)


@dataclass(frozen=True)
class Study:
    """A preprocessed study directory (contract §5)."""

    directory: Path

    def anchor(self) -> nib.Nifti1Image:
        """The registration anchor named in status.json, else the first modality present."""
        status = self.directory / "status.json"
        names = list(MODALITIES)
        if status.exists():
            anchor = json.loads(status.read_text()).get("anchor")
            if anchor in names:
                names.insert(0, anchor)
        for name in names:
            if (path := self.directory / f"{name}.nii.gz").exists():
                return nib.load(path)
        raise FileNotFoundError(f"no modality image in {self.directory}")

    def mask(self, name: str) -> np.ndarray | None:
        path = self.directory / f"{name}.nii.gz"
        return np.asarray(nib.load(path).dataobj) if path.exists() else None

    def brain(self) -> np.ndarray | None:
        mask = self.mask("brain_mask")
        return None if mask is None else mask > 0

    def tumour(self) -> np.ndarray | None:
        seg = self.mask("tumour_seg")
        return None if seg is None else tumour_mask(seg)


def write_map(path: Path, frames: np.ndarray, names: list[str], reference: nib.Nifti1Image) -> None:
    """(K, X, Y, Z) frames as one NIfTI on the reference's grid: 3D when K == 1, else 4D (X, Y, Z, K)."""
    if frames.shape[1:] != reference.shape[:3]:
        raise ValueError(f"map grid {frames.shape[1:]} differs from the atlas grid {reference.shape[:3]}")
    data = frames[0] if len(frames) == 1 else np.moveaxis(frames, 0, -1)
    header = reference.header.copy()
    header.set_data_dtype(np.float32)
    image = nib.Nifti1Image(data.astype(np.float32), reference.affine, header)
    image.header["descrip"] = ("frames: " + ",".join(names)).encode()[:79]
    image.to_filename(path)


def _title(pair: Mapping[str, str], method: str, kind: str, cls: str, probs: np.ndarray, scores: OverlapScores) -> str:
    prob_text = "  ".join(f"{c} {p:.2f}" for c, p in zip(CLASSES, probs))
    tumour = (
        "no tumour mask"
        if np.isnan(scores.tumour_volume_share)
        else "no tumour in any study (pointing game not applicable)"
        if scores.pointing == NOT_APPLICABLE and scores.tumour_volume_share == 0
        else f"tumour share {scores.tumour_share:.0%} (tumour = {scores.tumour_volume_share:.0%} of brain), "
        f"peak in tumour: {'yes' if scores.pointing_hit == 1 else 'no'}"
    )
    return (
        f"{pair['id']} ({pair.get('selection', '')})  —  {method}, target {cls} ({kind})\n"
        f"true {pair['label']}   predicted {CLASSES[int(np.argmax(probs))]}   p: {prob_text}\n{tumour}"
    )


@dataclass(frozen=True)
class _Anatomy:
    """What the figures draw under the maps: one row per study."""

    study: str  # "current", "previous", "nadir", ...
    name: str  # e.g. week-044
    image: np.ndarray
    tumour: np.ndarray | None


def _panels(anatomy: list[_Anatomy], on_atlas: np.ndarray, groups: list[str], per_channel: bool) -> list[Panel]:
    """Per-channel maps split by study where the input stacks the studies, else the summed map on every row."""
    total = np.abs(on_atlas).sum(axis=0)
    if not (per_channel and {a.study for a in anatomy} <= set(groups)):
        return [Panel(f"{a.study} {a.name}", a.image, total, a.tumour) for a in anatomy]
    return [
        Panel(
            f"{a.study} {a.name}\n{group_share(on_atlas, groups, a.study):.0%} of the mass",
            a.image,
            np.abs(on_atlas[[g == a.study for g in groups]]).sum(axis=0),
            a.tumour,
        )
        for a in anatomy
    ]


def explain_pair(
    model: nn.Module,
    pair: Mapping[str, str],
    inputs: PairInput,
    studies: Mapping[str, Study],
    settings: ExplainSettings,
    out_dir: Path,
) -> list[dict[str, object]]:
    """All methods × targets for one pair; writes `<id>_<method>_<kind>-<class>.{nii.gz,png}`, returns score rows.

    `studies` maps `current` and each reference the model reads (e.g. `previous`, `nadir`) to its study; maps
    are scored against the union of their tumour masks inside the union of their brain masks.

    Per-channel maps are written as one frame per input channel (signed where the method is) plus `sum`, the
    summed magnitudes, which is also what is scored and drawn; Grad-CAM maps have the one frame.
    """
    probs = predict_proba(model, inputs.image, inputs.extra)
    predicted = CLASSES[int(np.argmax(probs))]
    if pair.get("predicted") and pair["predicted"] != predicted:
        log.warning("%s: predictions.tsv says %s, the model now predicts %s", pair["id"], pair["predicted"], predicted)
    reference = studies["current"].anchor()
    tumours = {side: study.tumour() for side, study in studies.items()}
    brain = _union_brain([study.brain() for study in studies.values()])
    tumour = union_mask(list(tumours.values()))
    anatomy = [
        _Anatomy(side, str(pair.get(side, "")), study.anchor().get_fdata(dtype=np.float32), tumours[side])
        for side, study in studies.items()
    ]
    rows = []
    for kind, cls in explanation_targets(str(pair["label"]), predicted, settings.targets):
        for method in settings.methods:
            per_channel = method in PER_CHANNEL
            raw = attribute(model, inputs.image, CLASSES.index(cls), method, settings, inputs.extra)
            on_atlas = inputs.to_atlas(raw)
            total = np.abs(on_atlas).sum(axis=0)
            frames, names = (
                (np.concatenate([on_atlas, total[None]]), [*inputs.channels, "sum"])
                if per_channel
                else (total[None], ["all channels"])
            )
            stem = f"{pair['id']}_{method}_{kind}-{cls}"
            write_map(out_dir / f"{stem}.nii.gz", frames, names, reference)
            scores = overlap_scores(total, brain=brain, tumour=tumour)
            render_explanation(
                out_dir / f"{stem}.png",
                _panels(anatomy, on_atlas, inputs.groups, per_channel),
                reference.affine,
                _title(pair, method, kind, cls, probs, scores),
                peak_from=total,
                **dict(settings.figure),
            )
            shares = {
                f"{g}_share": group_share(on_atlas, inputs.groups, g) if per_channel else np.nan
                for g in studies
            }
            rows.append(
                {
                    "pair": pair["id"],
                    "patient": pair.get("patient", ""),
                    "label": pair["label"],
                    "predicted": predicted,
                    "correct": int(pair["label"] == predicted),
                    "selection": pair.get("selection", ""),
                    "method": method,
                    "target": kind,
                    "target_class": cls,
                    **{f"prob_{c}": round(float(p), 4) for c, p in zip(CLASSES, probs)},
                    **{k: v for k, v in scores.as_dict().items() if k != "peak_voxel"},
                    **shares,
                    "peak_voxel": ",".join(map(str, scores.peak_voxel)),
                    "frames": ",".join(names),
                    "map": f"{stem}.nii.gz",
                    "figure": f"{stem}.png",
                }
            )
    return rows


def _union_brain(masks: list[np.ndarray | None]) -> np.ndarray | None:
    present = [mask for mask in masks if mask is not None]
    return union_mask(present) if present else None


def channel_groups(channels: list[str]) -> list[str]:
    """The study ("current", "previous", "nadir", ...) or "difference" per channel name of
    experiments.channel_names."""
    sides = [name.rsplit("_", 1)[-1] for name in channels]
    return ["difference" if side.startswith("current-") else side for side in sides]


def pair_input(item: dict, resolved: dict, store_dir: str | Path, geometry: dict) -> PairInput:
    """A pair as the train job's network saw it: its studies read from the tensor store and assembled the
    same way (ranoflow.train.transforms), with the way back to the atlas grid.

    The store's grid is one crop of the atlas brain box and the fit to image_size (`geometry`, the store's
    grid.json); `to_atlas` sends maps back through its inverse (ranoflow.train.tensor_store.to_atlas).
    """
    from ranoflow.train.datasets import StoreDataset
    from ranoflow.train.tensor_store import to_atlas
    from ranoflow.train.transforms import assemble_pairs

    training = resolved["training"]
    references = resolved.get("references", ["previous"])
    sample = StoreDataset(
        [item], store_dir, resolved["modalities"], references, training["image_size"], in_memory=True
    )[0]
    image = assemble_pairs(
        sample["studies"][None], sample["masks"][None], resolved["input"], training.get("pair_mask", "intersection")
    )

    extra = (torch.as_tensor(item["clinical"], dtype=torch.float32)[None],) if resolved["clinical"] else ()
    channels = list(resolved["channels"])
    return PairInput(
        image=image.float(),
        channels=[c.replace("_", " ") for c in channels],
        groups=channel_groups(channels),
        to_atlas=lambda frames: to_atlas(frames, geometry),
        extra=extra,
    )
