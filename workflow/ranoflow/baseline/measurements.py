"""Measurements of the enhancing tumour in a segmentation: bidimensional product, new lesions (reading the
segmentation and its volumes: ranoflow.segmentation)."""

from __future__ import annotations

import nibabel as nib
import numpy as np
from scipy import ndimage
from scipy.spatial import ConvexHull, QhullError

from ranoflow.segmentation import Segmentation


def axial_axis(affine: np.ndarray) -> int:
    """Voxel axis running inferior-superior (axial slices are perpendicular to it)."""
    return next(i for i, code in enumerate(nib.aff2axcodes(affine)) if code in "SI")


def _pixel_corners(region: np.ndarray, spacing: tuple[float, float]) -> np.ndarray:
    """Corners (mm) of the region's edge pixels: the convex hull, hence both diameters, only needs those."""
    edge = region & ~ndimage.binary_erosion(region)
    rows, cols = np.nonzero(edge)
    corners = [np.stack([rows + dr, cols + dc], axis=1) for dr in (0, 1) for dc in (0, 1)]
    return np.concatenate(corners) * np.asarray(spacing, dtype=float)


def perpendicular_diameters(region: np.ndarray, spacing: tuple[float, float]) -> tuple[float, float]:
    """Longest diameter of a 2-D region (mm) and its extent perpendicular to that diameter."""
    points = _pixel_corners(region, spacing)
    try:
        points = points[ConvexHull(points).vertices]
    except QhullError:  # collinear corners cannot happen for whole pixels, but keep it safe
        pass
    distances = np.linalg.norm(points[:, None, :] - points[None, :, :], axis=-1)
    i, j = np.unravel_index(np.argmax(distances), distances.shape)
    longest = float(distances[i, j])
    direction = (points[j] - points[i]) / longest
    projection = points @ np.array([-direction[1], direction[0]])
    return longest, float(projection.max() - projection.min())


def bidimensional_product(
    segmentation: Segmentation, min_diameter_mm: float = 10.0, max_target_lesions: int = 3
) -> float:
    """Sum of perpendicular-diameter products (mm²) of the largest measurable enhancing lesions.

    Each 3-D lesion is measured on the axial slice where its longest diameter is largest; a lesion
    is measurable when both diameters reach `min_diameter_mm`.
    """
    axis = axial_axis(segmentation.affine)
    in_plane = tuple(float(z) for k, z in enumerate(segmentation.zooms) if k != axis)
    lesions, count = ndimage.label(segmentation.enhancing)
    products = []
    for lesion in range(1, count + 1):
        mask = np.moveaxis(lesions == lesion, axis, 0)
        best = (0.0, 0.0)
        for index in np.flatnonzero(mask.any(axis=(1, 2))):
            parts, n_parts = ndimage.label(mask[index])
            for part in range(1, n_parts + 1):
                best = max(best, perpendicular_diameters(parts == part, in_plane))
        if min(best) >= min_diameter_mm:
            products.append(best[0] * best[1])
    return float(sum(sorted(products, reverse=True)[:max_target_lesions]))


def count_new_lesions(
    previous: Segmentation, current: Segmentation, margin_mm: float, min_volume_mm3: float
) -> int:
    """Enhancing components of `current` farther than `margin_mm` from every previous lesion.

    Both masks are compared in world coordinates (their affines), so they must share a space,
    e.g. DeepBraTumIA's atlas output or registered studies. Voxels mapped outside the previous
    field of view count as near (not new): nothing was imaged there to compare against.
    """
    components, count = ndimage.label(current.enhancing)
    if count == 0:
        return 0
    if previous.enhancing.any():
        distance = ndimage.distance_transform_edt(~previous.enhancing, sampling=previous.zooms)
    else:
        distance = np.full(previous.enhancing.shape, np.inf)
    voxel_to_previous = np.linalg.inv(previous.affine) @ current.affine
    voxel_volume = float(np.prod(current.zooms))
    new = 0
    for component in range(1, count + 1):
        voxels = np.argwhere(components == component)
        if len(voxels) * voxel_volume < min_volume_mm3:
            continue
        mapped = voxel_to_previous[:3, :3] @ voxels.T + voxel_to_previous[:3, 3:]
        nearest = ndimage.map_coordinates(distance, mapped, order=0, mode="constant", cval=0.0)
        if nearest.min() > margin_mm:
            new += 1
    return new
