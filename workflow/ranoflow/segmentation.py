"""Reading a tumour segmentation (DeepBraTumIA, HD-GLIO-AUTO, the demo's): the label of each compartment per
source, the enhancing-tumour mask, volumes. Shared by the index (the nadir's volumes) and the baselines."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from ranoflow import lumiere

# Label of each tumour compartment per segmentation source. DeepBraTumIA (LUMIERE's maps and the demo
# generator's): 1 enhancing core, 2 necrotic/non-enhancing, 3 edema (ranoflow.lumiere.DBT_*; the label that
# measured_volumes_in_mm3.json calls Enhancing_Core is 1). HD-GLIO-AUTO: 1 non-enhancing T2/FLAIR
# abnormality, 2 contrast enhancement.
_DEEPBRATUMIA = {"enhancing": (lumiere.DBT_ENHANCING,), "necrosis": (lumiere.DBT_NECROTIC,), "edema": (lumiere.DBT_EDEMA,)}
COMPARTMENT_LABELS: dict[str, dict[str, tuple[int, ...]]] = {
    "deepbratumia": _DEEPBRATUMIA,
    "hdglio": {"enhancing": (lumiere.HDGLIO_ENHANCING,), "necrosis": (), "edema": (lumiere.HDGLIO_NONENHANCING,)},
    "synthetic": _DEEPBRATUMIA,
}
ENHANCING_LABELS: dict[str, tuple[int, ...]] = {source: labels["enhancing"] for source, labels in COMPARTMENT_LABELS.items()}


@dataclass(frozen=True)
class Segmentation:
    """Enhancing-tumour mask of one study with its voxel-to-world affine."""

    enhancing: np.ndarray
    affine: np.ndarray

    @property
    def zooms(self) -> np.ndarray:
        return np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0))


def enhancing_mask(labels: np.ndarray, source: str) -> np.ndarray:
    """Boolean enhancing-tumour mask from a label map of the given segmentation source."""
    if source not in ENHANCING_LABELS:
        raise ValueError(f"unknown segmentation source {source!r}; known: {sorted(ENHANCING_LABELS)}")
    return np.isin(np.rint(labels).astype(np.int64), ENHANCING_LABELS[source])


def load_segmentation(path: str | Path, source: str) -> Segmentation:
    """Read a label map and keep its enhancing tumour."""
    image = nib.load(str(path))
    return Segmentation(enhancing_mask(np.asanyarray(image.dataobj), source), image.affine)


def volume_mm3(mask: np.ndarray, zooms: np.ndarray) -> float:
    """Volume of a boolean mask in mm³."""
    return float(mask.sum() * np.prod(zooms[:3]))


def measured_enhancing_volume(path: str | Path) -> float:
    """Enhancing volume from DeepBraTumIA's measured_volumes_in_mm3.json."""
    return float(json.loads(Path(path).read_text())[lumiere.DBT_VOLUME_KEYS[lumiere.DBT_ENHANCING]])
