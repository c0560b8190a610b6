"""PNG figures of attribution maps: orthogonal slices through the map's maximum over the anchor images."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib
import nibabel as nib
import numpy as np
from matplotlib.figure import Figure

from ranoflow.explain.overlap import peak_voxel


@dataclass(frozen=True)
class Panel:
    """One figure row: an anatomical image with the map drawn over it (both on the same grid)."""

    label: str
    image: np.ndarray
    attribution: np.ndarray
    tumour: np.ndarray | None = None  # outlined in cyan


def _to_ras(volume: np.ndarray, affine: np.ndarray) -> np.ndarray:
    orientation = nib.orientations.io_orientation(affine)
    return nib.orientations.apply_orientation(np.asarray(volume), orientation)


def _ras_zooms(affine: np.ndarray) -> np.ndarray:
    orientation = nib.orientations.io_orientation(affine)
    zooms = np.sqrt((np.asarray(affine)[:3, :3] ** 2).sum(axis=0))
    return zooms[np.argsort(orientation[:, 0])]


def _slices(volume: np.ndarray, peak: tuple[int, int, int]) -> list[np.ndarray]:
    """Axial, coronal and sagittal planes of a RAS volume, transposed for imshow(origin="lower")."""
    i, j, k = peak
    return [volume[:, :, k].T, volume[:, j, :].T, volume[i, :, :].T]


def render_explanation(
    path: str | Path,
    panels: list[Panel],
    affine: np.ndarray,
    title: str,
    peak_from: np.ndarray | None = None,
    dpi: int = 110,
    percentile: float = 99.5,
    threshold: float = 0.3,
    alpha: float = 0.65,
) -> tuple[int, int, int]:
    """Writes the figure; returns the peak voxel (RAS-reoriented indices) the slices go through.

    `peak_from` (default: the sum of the panels' maps) decides the slices; one colour scale (the given
    percentile of the non-zero magnitudes over all panels) keeps rows comparable, and values under
    `threshold` × that scale are left transparent so the anatomy stays visible.
    """
    maps = [_to_ras(np.abs(p.attribution), affine) for p in panels]
    images = [_to_ras(p.image, affine) for p in panels]
    reference = _to_ras(np.abs(peak_from), affine) if peak_from is not None else np.sum(maps, axis=0)
    peak = peak_voxel(reference)
    nonzero = np.concatenate([m[m > 0] for m in maps]) if any((m > 0).any() for m in maps) else np.ones(1)
    vmax = float(np.percentile(nonzero, percentile)) or 1.0
    outlines = [None if p.tumour is None else _to_ras(p.tumour.astype(np.float32), affine) for p in panels]
    zx, zy, zz = _ras_zooms(affine)
    aspects = [zy / zx, zz / zx, zz / zy]
    plane_names = ["axial", "coronal", "sagittal"]

    anatomy_cmap = matplotlib.colormaps["gray"].with_extremes(bad="black")
    fig = Figure(figsize=(10, 3.2 * len(panels) + 0.9), dpi=dpi, layout="constrained")
    axes = fig.subplots(len(panels), 3, squeeze=False)
    overlay = None
    for row, (panel, image, attribution, outline) in enumerate(zip(panels, images, maps, outlines)):
        inside = image[image != 0]
        low, high = np.percentile(inside, [1, 99]) if inside.size else (0.0, 1.0)
        for col, (img_slice, map_slice) in enumerate(zip(_slices(image, peak), _slices(attribution, peak))):
            ax = axes[row, col]
            # Outside the brain the preprocessed images are exactly 0: black, whatever the intensity scale.
            ax.imshow(np.ma.masked_equal(img_slice, 0), cmap=anatomy_cmap, vmin=low, vmax=high, origin="lower",
                      aspect=aspects[col])
            shown = np.ma.masked_less(map_slice, threshold * vmax)
            overlay = ax.imshow(
                shown, cmap="autumn", vmin=0, vmax=vmax, alpha=alpha, origin="lower", aspect=aspects[col]
            )
            if outline is not None:
                plane = _slices(outline, peak)[col]
                if plane.any():
                    ax.contour(plane, levels=[0.5], colors="cyan", linewidths=0.8)
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(plane_names[col], fontsize=9)
            if col == 0:
                ax.set_ylabel(panel.label, fontsize=10)
    if overlay is not None:
        fig.colorbar(overlay, ax=axes, shrink=0.6, label="attribution (|value|)")
    fig.suptitle(title, fontsize=10)
    fig.savefig(path)
    return peak  # type: ignore[return-value]
