"""How much of an attribution map falls on the tumour and the brain (scores for summary.tsv)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

# DeepBraTumIA labels on the atlas grid: 1 enhancing, 2 necrosis/non-enhancing, 3 edema.
TUMOUR_LABELS: tuple[int, ...] = (1, 2, 3)


NOT_APPLICABLE = "not applicable"


@dataclass(frozen=True)
class OverlapScores:
    """Shares of attribution mass; NaN where the needed mask is missing, no study shows tumour, or the map is
    all zero."""

    tumour_share: float
    brain_share: float
    pointing_hit: float  # 1.0 / 0.0; NaN where not applicable
    pointing: str  # "hit", "miss" or "not applicable" (no tumour mask, no tumour in any study, no mass in the brain)
    tumour_volume_share: float  # tumour voxels / brain voxels: what a uniform in-brain map would score
    peak_voxel: tuple[int, int, int]

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def tumour_mask(segmentation: np.ndarray, labels: tuple[int, ...] = TUMOUR_LABELS) -> np.ndarray:
    """Boolean tumour mask (enhancing + necrosis + edema by default) from a label image."""
    return np.isin(np.asarray(segmentation), labels)


def peak_voxel(mass: np.ndarray, rtol: float = 1e-6) -> tuple[int, ...]:
    """The maximum's voxel; among tied maxima (flat maps, e.g. Grad-CAM of a 1-voxel layer upsampled) the
    one nearest the map's centre of mass, rather than the first in memory order (a corner of the plateau)."""
    mass = np.asarray(mass, dtype=np.float64)
    top = float(mass.max())
    tied = np.argwhere(mass >= top - rtol * abs(top))
    if len(tied) == 1 or mass.sum() <= 0:
        return tuple(int(i) for i in tied[0])
    centre = np.array([(mass.sum(axis=tuple(a for a in range(mass.ndim) if a != d)) * np.arange(n)).sum()
                       for d, n in enumerate(mass.shape)]) / mass.sum()
    return tuple(int(i) for i in tied[np.argmin(((tied - centre) ** 2).sum(axis=1))])


def _share(mass: np.ndarray, mask: np.ndarray | None, total: float) -> float:
    if mask is None or total <= 0:
        return float("nan")
    return float(mass[mask].sum() / total)


def union_mask(masks: Sequence[np.ndarray | None]) -> np.ndarray | None:
    """Voxels in any of the masks; None when a mask is missing (a partial union would score misses unfairly)."""
    if not masks or any(mask is None for mask in masks):
        return None
    return np.logical_or.reduce([np.asarray(mask, dtype=bool) for mask in masks])


def overlap_scores(
    attribution: np.ndarray,
    brain: np.ndarray | None,
    tumour: np.ndarray | None,
) -> OverlapScores:
    """Scores one 3D map against boolean brain and tumour masks on the same grid.

    `tumour` is the union of the compared studies' tumour masks, so a shrinking or vanished tumour (PR, CR)
    still counts where it was. The map's absolute value is its mass, so signed maps (integrated gradients,
    occlusion) count by magnitude. The pointing game's peak is searched inside the brain (a coarse map may
    peak at the crop border); pairs with no tumour in any study are not applicable, not misses.
    """
    mass = np.abs(np.asarray(attribution, dtype=np.float64))
    if mass.ndim != 3:
        raise ValueError(f"expected a 3D map, got shape {mass.shape}")
    for name, mask in (("brain", brain), ("tumour", tumour)):
        if mask is not None and mask.shape != mass.shape:
            raise ValueError(f"{name} mask shape {mask.shape} differs from the map's {mass.shape}")
    total = float(mass.sum())
    in_brain = mass if brain is None else np.where(brain, mass, 0.0)
    peak = peak_voxel(in_brain)
    tumour_present = tumour is not None and bool(tumour.any())
    applicable = tumour_present and float(in_brain.sum()) > 0
    hit = float(bool(tumour[peak])) if applicable else float("nan")
    if tumour is None:
        volume_share = float("nan")
    else:
        reference = int(brain.sum()) if brain is not None else mass.size
        volume_share = float(tumour.sum() / reference) if reference else float("nan")
    return OverlapScores(
        tumour_share=_share(mass, tumour, total) if tumour_present else float("nan"),
        brain_share=_share(mass, brain, total),
        pointing_hit=hit,
        pointing=NOT_APPLICABLE if not applicable else ("hit" if hit else "miss"),
        tumour_volume_share=volume_share,
        peak_voxel=peak,  # type: ignore[arg-type]
    )


def group_share(attribution: np.ndarray, groups: list[str], group: str) -> float:
    """Share of a channels-first map's mass carried by the channels labelled `group` (e.g. "current")."""
    mass = np.abs(np.asarray(attribution, dtype=np.float64))
    if mass.shape[0] != len(groups):
        raise ValueError(f"{len(groups)} channel groups for {mass.shape[0]} channels")
    total = float(mass.sum())
    if total <= 0 or group not in groups:
        return float("nan")
    selected = [i for i, g in enumerate(groups) if g == group]
    return float(mass[selected].sum() / total)
