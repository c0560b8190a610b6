"""Every segmentation-derived quantity of a study, measured once (results/baseline/study_measures.tsv).

Per study: the volume of each tumour compartment (enhancing, necrosis, edema / non-enhancing T2-FLAIR), the
enhancing components (count, count of measurable ones), the largest axial diameter and the bidimensional
product (RANO: largest axial diameter x its perpendicular, summed over the largest target lesions), and the
enhancing tumour as points in world coordinates on a coarse grid (`lesion_grid_mm`), each with its component,
which is all a new-lesion check needs: a component of the current study whose points all lie farther than a
margin from every point of the previous study is new. A KD-tree query replaces a 1 mm distance transform per
pair. Every rule row and volumes_gbm read these tables; no rule reloads a segmentation.

Each study's measures are cached under a key of the segmentation's bytes, the measurement settings and
MEASURE_VERSION, so a rerun measures only studies whose files or settings changed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from scipy import ndimage
from scipy.spatial import cKDTree

from ranoflow import lumiere
from ranoflow.baseline.measurements import axial_axis, perpendicular_diameters
from ranoflow.segmentation import COMPARTMENT_LABELS

log = logging.getLogger(__name__)

# Bumped whenever what a cached entry holds changes.
MEASURE_VERSION = 1

MEASURED_KEYS = {"enhancing": "Enhancing_Core", "necrosis": "Necrotic_NonEnhancing", "edema": "Edema_Compartment"}
COMPARTMENTS = ("enhancing", "necrosis", "edema")
MEASURE_COLUMNS = [
    "patient", "study", "segmentation", "enhancing_mm3", "necrosis_mm3", "edema_mm3", "enhancing_components",
    "measurable_lesions", "largest_diameter_mm", "perpendicular_mm", "product_mm2",
]


@dataclass(frozen=True)
class MeasureSettings:
    """How studies are measured (a subset of the `baseline` config section)."""

    source: str = "deepbratumia"
    volumes: str = "mask"
    min_diameter_mm: float = 10.0
    max_target_lesions: int = 3
    new_lesion_min_volume_mm3: float = 100.0
    lesion_grid_mm: float = 2.0

    @classmethod
    def from_config(cls, section: dict) -> MeasureSettings:
        names = set(cls.__dataclass_fields__)
        return cls(**{key: value for key, value in section.items() if key in names})


@dataclass
class StudyMeasures:
    values: dict
    points: np.ndarray  # (n, 3) float32 world coordinates (mm) of enhancing voxels on the coarse grid
    components: np.ndarray  # (n,) int32 component of each point; 0: a component below the minimum volume


def compartment_labels(source: str) -> dict[str, tuple[int, ...]]:
    if source not in COMPARTMENT_LABELS:
        raise ValueError(f"unknown segmentation source {source!r}; known: {sorted(COMPARTMENT_LABELS)}")
    return COMPARTMENT_LABELS[source]


def _crop(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The bounding box of the non-zero labels (one voxel of margin) and its voxel offset."""
    nonzero = labels > 0
    if not nonzero.any():
        return labels[:1, :1, :1] * 0, np.zeros(3, dtype=int)
    lows, highs = [], []
    for axis in range(3):
        other = tuple(k for k in range(3) if k != axis)
        present = np.flatnonzero(nonzero.any(axis=other))
        lows.append(max(int(present[0]) - 1, 0))
        highs.append(min(int(present[-1]) + 2, labels.shape[axis]))
    box = tuple(slice(lo, hi) for lo, hi in zip(lows, highs))
    return labels[box], np.asarray(lows)


def _lesion_diameters(mask: np.ndarray, axis: int, in_plane: tuple[float, float]) -> tuple[float, float]:
    """Largest axial diameter of one 3-D lesion and its perpendicular extent, on the best axial slice.

    Slices are visited largest first; a slice part whose bounding-box diagonal cannot beat the best
    diameter so far is not measured (the diameter never exceeds that diagonal)."""
    moved = np.moveaxis(mask, axis, 0)
    areas = moved.sum(axis=(1, 2))
    best = (0.0, 0.0)
    for index in np.argsort(-areas, kind="stable")[: int((areas > 0).sum())]:
        parts, n_parts = ndimage.label(moved[index])
        for part, box in enumerate(ndimage.find_objects(parts), start=1):
            diagonal = np.hypot((box[0].stop - box[0].start) * in_plane[0], (box[1].stop - box[1].start) * in_plane[1])
            if diagonal < best[0]:
                continue
            best = max(best, perpendicular_diameters(parts[box] == part, in_plane))
    return best


def _coarse_points(enhancing: np.ndarray, components: np.ndarray, affine: np.ndarray, offset: np.ndarray,
                   zooms: np.ndarray, grid_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """Enhancing voxels pooled into blocks of about grid_mm: block centres (world mm) and their component."""
    step = np.maximum(1, np.floor(grid_mm / zooms + 1e-6).astype(int))
    pad = [(0, (-s) % k) for s, k in zip(components.shape, step)]
    # components of -1 (too small to be new) still mark a lesion: pooled as 0 < label, kept below 1
    padded = np.pad(np.where(enhancing, np.where(components > 0, components + 1, 1), 0), pad)
    shape = [n // k for n, k in zip(padded.shape, step)]
    blocks = padded.reshape(shape[0], step[0], shape[1], step[1], shape[2], step[2]).max(axis=(1, 3, 5))
    index = np.argwhere(blocks > 0)
    voxel = offset + index * step + (step - 1) / 2.0
    world = (affine[:3, :3] @ voxel.T + affine[:3, 3:]).T
    return world.astype(np.float32), (blocks[tuple(index.T)] - 1).astype(np.int32)


def measure_labels(labels: np.ndarray, affine: np.ndarray, settings: MeasureSettings) -> StudyMeasures:
    """Every quantity of one label map (see the module docstring)."""
    compartments = compartment_labels(settings.source)
    zooms = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    voxel_mm3 = float(np.prod(zooms))
    labels = np.asanyarray(labels)
    if not np.issubdtype(labels.dtype, np.integer):
        labels = np.rint(labels)
    cropped, offset = _crop(labels)
    cropped = cropped.astype(np.int16)
    values = {f"{name}_mm3": float(np.isin(cropped, compartments[name]).sum() * voxel_mm3) for name in COMPARTMENTS}
    enhancing = np.isin(cropped, compartments["enhancing"])
    components, count = ndimage.label(enhancing)
    sizes = np.bincount(components.ravel(), minlength=count + 1)[1:] * voxel_mm3
    kept = np.flatnonzero(sizes >= settings.new_lesion_min_volume_mm3) + 1
    axis = axial_axis(affine)
    in_plane = tuple(float(z) for k, z in enumerate(zooms) if k != axis)
    boxes = ndimage.find_objects(components)
    lesions = [_lesion_diameters(components[boxes[c - 1]] == c, axis, in_plane) for c in kept]
    lesions.sort(reverse=True)
    measurable = sorted((d * p for d, p in lesions if min(d, p) >= settings.min_diameter_mm), reverse=True)
    largest = lesions[0] if lesions else (0.0, 0.0)
    values.update(
        enhancing_components=int(len(kept)),
        measurable_lesions=len(measurable),
        largest_diameter_mm=float(largest[0]),
        perpendicular_mm=float(largest[1]),
        product_mm2=float(sum(measurable[: settings.max_target_lesions])),
    )
    # every enhancing voxel is a previous lesion to later studies; only kept components can be new
    owners_map = np.where(np.isin(components, kept), components, -1)
    points, owners = _coarse_points(enhancing, owners_map, affine, offset, zooms, settings.lesion_grid_mm)
    return StudyMeasures(values, points, owners)


def _measured_json(segmentation: Path) -> Path:
    return segmentation.parent / Path(lumiere.DBT_VOLUMES).name


def measure_file(path: str | Path, settings: MeasureSettings) -> StudyMeasures:
    """Measure one segmentation file; with volumes 'measured' the volumes come from DeepBraTumIA's JSON."""
    image = nib.load(str(path))
    measures = measure_labels(np.asanyarray(image.dataobj), image.affine, settings)
    if settings.volumes == "measured":
        if settings.source == "hdglio":
            raise ValueError("volumes: measured reads DeepBraTumIA's measured_volumes_in_mm3.json; HD-GLIO-AUTO has none")
        measured = json.loads(_measured_json(Path(path)).read_text())
        for name in COMPARTMENTS:
            measures.values[f"{name}_mm3"] = float(measured[MEASURED_KEYS[name]])
    return measures


def cache_key(path: str | Path, settings: MeasureSettings) -> str:
    """Content key of one study's measures: the file's bytes (and the JSON read), the settings, the version."""
    digest = hashlib.sha1(Path(path).read_bytes())
    if settings.volumes == "measured" and _measured_json(Path(path)).exists():
        digest.update(_measured_json(Path(path)).read_bytes())
    digest.update(json.dumps({**asdict(settings), "version": MEASURE_VERSION}, sort_keys=True).encode())
    return digest.hexdigest()


def _cached_measure(task: tuple[str, str, MeasureSettings]) -> tuple[dict, np.ndarray, np.ndarray]:
    path, cache_dir, settings = task
    entry = Path(cache_dir) / f"{cache_key(path, settings)}.npz"
    if entry.exists():
        with np.load(entry) as stored:
            return json.loads(str(stored["values"])), stored["points"], stored["components"]
    measures = measure_file(path, settings)
    # identical segmentations share a key, so two workers may write one entry at once: each its own temporary
    temporary = entry.with_name(f"{entry.stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp.npz")
    np.savez(temporary, values=json.dumps(measures.values), points=measures.points, components=measures.components)
    temporary.replace(entry)
    return measures.values, measures.points, measures.components


def measure_studies(
    studies: pd.DataFrame, column: str, settings: MeasureSettings, cache_dir: str | Path, workers: int = 1
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """study_measures.tsv (one row per study, NaN without a segmentation) and the lesion points per study
    (npz arrays '<patient>/<study>/points' and '.../components')."""
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    rows = [(row.patient, row.study, str(getattr(row, column) or "")) for row in studies.itertuples(index=False)]
    tasks = [(path, str(cache_dir), settings) for _, _, path in rows if path]
    if workers > 1 and len(tasks) > 1:
        with ProcessPoolExecutor(workers) as pool:
            results = list(pool.map(_cached_measure, tasks, chunksize=4))
    else:
        results = [_cached_measure(task) for task in tasks]
    measured = iter(results)
    table, arrays = [], {}
    for patient, study, path in rows:
        entry = {"patient": patient, "study": study, "segmentation": path}
        if path:
            values, points, owners = next(measured)
            entry.update(values)
            arrays[f"{patient}/{study}/points"] = points
            arrays[f"{patient}/{study}/components"] = owners
        table.append(entry)
    frame = pd.DataFrame(table).reindex(columns=MEASURE_COLUMNS)
    log.info("%d studies, %d measured (%s)", len(frame), len(tasks), settings.source)
    return frame, arrays


class LesionPoints:
    """The lesion points of every study (study_lesions.npz), read lazily."""

    def __init__(self, arrays) -> None:
        self._arrays = arrays
        self._trees: dict[str, cKDTree | None] = {}

    def _tree(self, key: str) -> cKDTree | None:
        if key not in self._trees:
            points = np.asarray(self._arrays[f"{key}/points"])
            self._trees[key] = cKDTree(points) if len(points) else None
        return self._trees[key]

    def new_lesions(self, patient: str, previous: str, current: str, margin_mm: float) -> int:
        """Components of `current` (those kept at measurement) farther than margin_mm from every previous lesion."""
        points = np.asarray(self._arrays[f"{patient}/{current}/points"])
        owners = np.asarray(self._arrays[f"{patient}/{current}/components"])
        points, owners = points[owners > 0], owners[owners > 0]
        if not len(points):
            return 0
        tree = self._tree(f"{patient}/{previous}")
        if tree is None:
            return int(len(np.unique(owners)))
        distance, _ = tree.query(points, distance_upper_bound=margin_mm + 1e-6)
        near = pd.Series(distance <= margin_mm).groupby(owners).any()
        return int((~near).sum())
