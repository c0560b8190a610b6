"""An atlas built from the dataset itself: the voxel-wise mean of its atlas-space skull-stripped images.

LUMIERE ships, per study, DeepBraTumIA's skull-stripped images registered to one atlas space (the
SRI24-like space the paper registered to). Their mean, each image scaled to a mean brain intensity of 1,
is a brain template of that space; its brain mask holds the voxels that are brain in at least half of
the images. Needs nothing beyond the dataset (no system package, no download).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

log = logging.getLogger(__name__)


@dataclass
class DatasetTemplate:
    head: nib.Nifti1Image  # skull-stripped mean brain (the template's "head": LUMIERE images have no skull)
    brain_mask: nib.Nifti1Image
    n_images: int


def template_images(stripped_dirs: Iterable[str], modality: str) -> list[Path]:
    """The `<modality>_skull_strip.nii.gz` images of the studies' DeepBraTumIA skull_strip folders."""
    paths = (Path(folder) / f"{modality.lower()}_skull_strip.nii.gz" for folder in stripped_dirs if folder)
    return sorted(path for path in paths if path.is_file())


def average_template(paths: list[Path]) -> DatasetTemplate:
    """Mean of the images (each scaled to mean 1 inside its brain) and the majority brain mask.

    Images on another grid than the first one (shape or affine) are left out with a log line.
    """
    if not paths:
        raise ValueError("no atlas-space skull-stripped images to build the dataset template from")
    first = nib.load(paths[0])
    total = np.zeros(first.shape[:3], dtype=np.float64)
    brain_votes = np.zeros(first.shape[:3], dtype=np.int32)
    used = 0
    for path in paths:
        image = nib.load(path)
        if image.shape[:3] != first.shape[:3] or not np.allclose(image.affine, first.affine, atol=1e-3):
            log.warning("%s: grid %s differs from %s's %s, left out", path, image.shape, paths[0], first.shape)
            continue
        data = np.asarray(image.dataobj, dtype=np.float64).reshape(first.shape[:3])
        brain = data > 0
        if not brain.any():
            log.warning("%s: no brain voxel, left out", path)
            continue
        total += data / data[brain].mean()
        brain_votes += brain
        used += 1
    if used == 0:
        raise ValueError(f"none of the {len(paths)} images has a brain on the grid of {paths[0]}")
    mask = brain_votes * 2 >= used
    head = np.where(mask, total / used, 0.0).astype(np.float32)
    return DatasetTemplate(
        head=nib.Nifti1Image(head, first.affine),
        brain_mask=nib.Nifti1Image(mask.astype(np.uint8), first.affine),
        n_images=used,
    )
