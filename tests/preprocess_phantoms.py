"""Tiny analytic head phantoms for the preprocess tests: ellipsoid scalp, skull, brain, white matter,
ventricles and an off-centre lesion, evaluated at world points so a known rigid pose can be applied."""

from __future__ import annotations

import ants
import numpy as np
from scipy.spatial.transform import Rotation

HEAD = np.array([72.0, 90.0, 78.0])  # scalp semi-axes, mm (x, y, z)
BRAIN = HEAD * 0.82
CONTRAST = {  # background, scalp, skull, brain(GM), WM, ventricle, lesion
    "CT1": (0.0, 0.9, 0.1, 0.45, 0.65, 0.15, 1.1),
    "T1": (0.0, 0.9, 0.1, 0.45, 0.65, 0.15, 0.35),
    "T2": (0.0, 0.6, 0.05, 0.55, 0.4, 1.0, 1.3),
    "FLAIR": (0.0, 0.6, 0.05, 0.5, 0.4, 0.1, 1.0),
}


def _inside(points: np.ndarray, centre, axes) -> np.ndarray:
    return (((points - np.asarray(centre)) / np.asarray(axes)) ** 2).sum(axis=-1) <= 1.0


def labels_at(points: np.ndarray) -> np.ndarray:
    """Tissue code (0..6, see CONTRAST) at atlas-space points (..., 3)."""
    labels = np.zeros(points.shape[:-1], np.uint8)
    labels[_inside(points, (0, 0, 0), HEAD)] = 1
    labels[_inside(points, (0, 0, 0), HEAD * 0.9)] = 2
    labels[_inside(points, (0, 0, 0), BRAIN)] = 3
    labels[_inside(points, (0, 5, 8), BRAIN * 0.7)] = 4
    labels[_inside(points, (-9, 10, 12), (6, 20, 9)) | _inside(points, (9, 10, 12), (6, 20, 9))] = 5
    labels[_inside(points, (25, -20, 20), (12, 14, 10))] = 6
    return labels


def make_grid(shape: tuple[int, int, int], spacing: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    """(origin, world points (shape + (3,))) of an axis-aligned grid centred on 0."""
    spacing_arr = np.asarray(spacing, float)
    origin = -0.5 * (np.asarray(shape) - 1) * spacing_arr
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1)
    return origin, origin + idx * spacing_arr


def phantom(
    modality: str = "T1",
    shape: tuple[int, int, int] = (56, 64, 56),
    spacing: tuple[float, float, float] = (3.0, 3.0, 3.0),
    rotation_deg: tuple[float, float, float] = (0.0, 0.0, 0.0),
    translation_mm: tuple[float, float, float] = (0.0, 0.0, 0.0),
    skull: bool = True,
    seed: int = 0,
) -> tuple[ants.ANTsImage, ants.ANTsImage]:
    """(image, true brain mask) of the head placed in the scanner by a rigid pose.

    A scanner point p shows the atlas point R^-1 (p - t); physical coordinates are ANTs' (LPS),
    which is all the tests need since everything stays inside ANTs.
    """
    origin, world = make_grid(shape, spacing)
    rotation = Rotation.from_euler("xyz", rotation_deg, degrees=True)
    atlas_points = rotation.inv().apply((world - np.asarray(translation_mm)).reshape(-1, 3)).reshape(world.shape)
    labels = labels_at(atlas_points)
    brain = labels >= 3
    if not skull:
        labels[~brain] = 0
    values = np.asarray(CONTRAST[modality], np.float32)[labels]
    rng = np.random.default_rng(seed)
    values = values + (labels > 0) * rng.normal(0, 0.02, values.shape).astype(np.float32)
    image = ants.from_numpy(100 * values.astype(np.float32), origin=tuple(origin), spacing=tuple(spacing))
    mask = ants.from_numpy(brain.astype(np.float32), origin=tuple(origin), spacing=tuple(spacing))
    return image, mask


def template(spacing: float = 2.0) -> tuple[ants.ANTsImage, ants.ANTsImage]:
    """Whole-head template (T1 contrast, no pose) and its brain mask."""
    n = int(round(200 / spacing))
    return phantom("T1", (n, n, n), (spacing,) * 3, seed=99)
