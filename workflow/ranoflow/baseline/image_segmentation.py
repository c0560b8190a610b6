"""Tumour segmentations the workflow derives itself from its preprocessed images, measured once per threshold.

Per study (results/preprocessed/<patient>/<study>/, per-study z-scored images on the atlas grid with a brain
mask): the enhancing tumour is the brain voxels whose contrast enhancement (CT1 - T1, both z-scores) reaches a
threshold, the edema / non-enhancing T2-FLAIR compartment the remaining brain voxels whose FLAIR z-score
reaches `flair_threshold`; components below `min_component_mm3` are dropped from both. Nothing here reads a
dataset's or the demo generator's segmentation. Each candidate threshold's label map is measured as
study_measures measures a segmentation (DeepBraTumIA labels), so the expert rule rates pairs from it unchanged.

Each study's measures are cached under a key of its images' bytes, the settings and IMAGE_MEASURE_VERSION.
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

from ranoflow import lumiere
from ranoflow.baseline.study_measures import MEASURE_COLUMNS, MeasureSettings, measure_labels

log = logging.getLogger(__name__)

# Bumped whenever what a cached entry holds changes.
IMAGE_MEASURE_VERSION = 1
IMAGES = {"ct1": "CT1.nii.gz", "t1": "T1.nii.gz", "flair": "FLAIR.nii.gz", "mask": "brain_mask.nii.gz"}
IMAGE_MEASURE_COLUMNS = [*MEASURE_COLUMNS, "threshold"]


@dataclass(frozen=True)
class ImageSegmentationSettings:
    """How enhancing tumour and edema are derived from the preprocessed images (baseline.image_rule)."""

    thresholds: tuple[float, ...] = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0)
    flair_threshold: float | None = 2.0
    min_component_mm3: float = 200.0

    @classmethod
    def from_config(cls, section: dict) -> ImageSegmentationSettings:
        thresholds = tuple(float(value) for value in section.get("thresholds", cls.thresholds))
        if not thresholds:
            raise ValueError("baseline.image_rule.thresholds: at least one candidate threshold is needed")
        return cls(thresholds=thresholds, flair_threshold=section.get("flair_threshold", cls.flair_threshold),
                   min_component_mm3=float(section.get("min_component_mm3", cls.min_component_mm3)))


def _drop_small(mask: np.ndarray, min_voxels: float) -> np.ndarray:
    components, count = ndimage.label(mask)
    if not count:
        return mask
    sizes = np.bincount(components.ravel(), minlength=count + 1)
    keep = sizes >= min_voxels
    keep[0] = False
    return keep[components]


def segment_images(ct1: np.ndarray, t1: np.ndarray, flair: np.ndarray | None, brain: np.ndarray, threshold: float,
                   settings: ImageSegmentationSettings, voxel_mm3: float) -> np.ndarray:
    """DeepBraTumIA-style label map (1 enhancing, 3 edema) from z-scored CT1, T1, FLAIR and the brain mask."""
    brain = brain > 0
    min_voxels = settings.min_component_mm3 / voxel_mm3
    enhancing = _drop_small(brain & (ct1 - t1 >= threshold), min_voxels)
    labels = np.zeros(ct1.shape, dtype=np.int16)
    if flair is not None and settings.flair_threshold is not None:
        edema = _drop_small(brain & ~enhancing & (flair >= settings.flair_threshold), min_voxels)
        labels[edema] = lumiere.DBT_EDEMA
    labels[enhancing] = lumiere.DBT_ENHANCING
    return labels


def study_images(directory: str | Path, settings: ImageSegmentationSettings) -> dict[str, Path]:
    """The image files of one preprocessed study that the segmentation reads."""
    names = dict(IMAGES)
    if settings.flair_threshold is None:
        names.pop("flair")
    return {key: Path(directory) / name for key, name in names.items()}


def measure_study(directory: str | Path, settings: ImageSegmentationSettings,
                  measure: MeasureSettings) -> list[tuple[dict, np.ndarray, np.ndarray]]:
    """(values, lesion points, their components) of one study, one entry per candidate threshold."""
    files = study_images(directory, settings)
    images = {key: nib.load(str(path)) for key, path in files.items()}
    affine = images["ct1"].affine
    data = {key: np.asanyarray(image.dataobj, dtype=np.float32) for key, image in images.items()}
    voxel_mm3 = float(np.prod(np.sqrt((affine[:3, :3] ** 2).sum(axis=0))))
    results = []
    for threshold in settings.thresholds:
        labels = segment_images(data["ct1"], data["t1"], data.get("flair"), data["mask"], threshold, settings,
                                voxel_mm3)
        measured = measure_labels(labels, affine, measure)
        results.append((measured.values, measured.points, measured.components))
    return results


def cache_key(directory: str | Path, settings: ImageSegmentationSettings, measure: MeasureSettings) -> str:
    """Content key of one study's measures: its images' bytes, both settings and the version."""
    digest = hashlib.sha1()
    for path in study_images(directory, settings).values():
        digest.update(path.read_bytes())
    digest.update(json.dumps({"segment": asdict(settings), "measure": asdict(measure),
                              "version": IMAGE_MEASURE_VERSION}, sort_keys=True).encode())
    return digest.hexdigest()


def _cached_study(task: tuple[str, str, ImageSegmentationSettings, MeasureSettings]) -> list:
    directory, cache_dir, settings, measure = task
    entry = Path(cache_dir) / f"{cache_key(directory, settings, measure)}.npz"
    if entry.exists():
        with np.load(entry) as stored:
            values = json.loads(str(stored["values"]))
            return [(values[k], stored[f"points_{k}"], stored[f"components_{k}"]) for k in range(len(values))]
    results = measure_study(directory, settings, measure)
    arrays = {}
    for k, (_, points, components) in enumerate(results):
        arrays[f"points_{k}"], arrays[f"components_{k}"] = points, components
    temporary = entry.with_name(f"{entry.stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp.npz")
    np.savez(temporary, values=json.dumps([values for values, _, _ in results]), **arrays)
    temporary.replace(entry)
    return results


def usable_studies(manifest: pd.DataFrame, settings: ImageSegmentationSettings) -> tuple[pd.DataFrame, list[str]]:
    """Manifest rows whose preprocessing is ok and whose images exist, and a reason for each other row."""
    keep, skipped = [], []
    for row in manifest.itertuples(index=False):
        if row.status != "ok":
            skipped.append(f"{row.patient}/{row.study}: preprocessing {row.status} ({row.reason})")
            continue
        absent = [path.name for path in study_images(row.dir, settings).values() if not path.exists()]
        if absent:
            skipped.append(f"{row.patient}/{row.study}: no {', '.join(absent)} in {row.dir}")
            continue
        keep.append(row)
    return pd.DataFrame(keep, columns=manifest.columns), skipped


def measure_manifest(manifest: pd.DataFrame, settings: ImageSegmentationSettings, measure: MeasureSettings,
                     cache_dir: str | Path, workers: int = 1) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """image_measures.tsv (study_measures.tsv's columns and `threshold`, one row per study and candidate) and
    the lesion points ('<candidate index>/<patient>/<study>/points' and '.../components')."""
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    studies, skipped = usable_studies(manifest, settings)
    for reason in skipped:
        log.warning("not segmented: %s", reason)
    tasks = [(str(row.dir), str(cache_dir), settings, measure) for row in studies.itertuples(index=False)]
    if workers > 1 and len(tasks) > 1:
        with ProcessPoolExecutor(workers) as pool:
            results = list(pool.map(_cached_study, tasks, chunksize=4))
    else:
        results = [_cached_study(task) for task in tasks]
    table, arrays = [], {}
    for row, per_threshold in zip(studies.itertuples(index=False), results):
        for k, (values, points, components) in enumerate(per_threshold):
            table.append({"patient": row.patient, "study": row.study, "segmentation": f"image-derived:{row.dir}",
                          **values, "threshold": settings.thresholds[k]})
            arrays[f"{k}/{row.patient}/{row.study}/points"] = points
            arrays[f"{k}/{row.patient}/{row.study}/components"] = components
    log.info("%d studies segmented from their images at %d thresholds, %d skipped", len(tasks),
             len(settings.thresholds), len(skipped))
    return pd.DataFrame(table, columns=IMAGE_MEASURE_COLUMNS), arrays


class CandidateArrays:
    """One candidate's view of image_lesions.npz, keyed as study_lesions.npz is (for LesionPoints)."""

    def __init__(self, arrays, index: int) -> None:
        self._arrays, self._prefix = arrays, f"{index}/"

    def __getitem__(self, key: str) -> np.ndarray:
        return self._arrays[self._prefix + key]
