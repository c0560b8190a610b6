"""The training tensor store: every preprocessed study once at the training grid, shared by every experiment.

The grid is one fixed crop of the atlas's brain box (the same for every study, so studies stay aligned
voxel for voxel), then the fit to `training.image_size`. A study's store is two numpy files, both
memory-mappable: `<study>.npy`, float16 of shape (len(MODALITIES), *image_size) in the channel order
of MODALITIES (a modality the study lacks is NaN), and `<study>_mask.npy`, its brain mask at the grid as
packed bits (np.packbits of the flattened boolean mask). A study that failed preprocessing gets empty
arrays (no pair reads it). `grid.json` records the geometry, so that maps can be sent back to the atlas.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ranoflow.vocabulary import MODALITIES

log = logging.getLogger(__name__)

USABLE_STATUS = ("ok", "flagged")


class StoreFileError(ValueError):
    """A store file that cannot be used (truncated, corrupt, or built for another grid)."""


def study_files(store_dir: str | Path, patient: str, study: str) -> tuple[Path, Path]:
    """(images, mask) paths of one study's store."""
    folder = Path(store_dir) / patient
    return folder / f"{study}.npy", folder / f"{study}_mask.npy"


def brain_box(atlas_mask: np.ndarray, margin: int) -> tuple[list[int], list[int]]:
    """[start, end) per axis of the atlas brain mask's bounding box, widened by `margin` voxels."""
    where = np.argwhere(atlas_mask > 0)
    if not len(where):
        raise ValueError("the atlas brain mask is empty")
    start = np.maximum(where.min(0) - margin, 0)
    end = np.minimum(where.max(0) + 1 + margin, atlas_mask.shape)
    return [int(v) for v in start], [int(v) for v in end]


def grid_geometry(atlas_mask_path: str | Path, image_size: Sequence[int], fit: str, margin: int) -> dict:
    """The training grid: atlas shape, the brain box cropped from it and the fit to image_size."""
    import nibabel as nib

    mask = np.asarray(nib.load(str(atlas_mask_path)).dataobj)
    start, end = brain_box(mask, margin)
    return {
        "atlas_shape": [int(s) for s in mask.shape[:3]],
        "box_start": start,
        "box_end": end,
        "image_size": [int(s) for s in image_size],
        "fit": fit,
        "modalities": list(MODALITIES),
    }


def grid_transform(geometry: dict):
    """MONAI array transforms from the atlas grid to the training grid (invertible: explain maps go back)."""
    from monai import transforms as mt

    size = geometry["image_size"]
    fit = (
        mt.Resize(spatial_size=size, mode="trilinear", anti_aliasing=True)
        if geometry["fit"] == "resize"
        else mt.ResizeWithPadOrCrop(spatial_size=size)
    )
    return mt.Compose([mt.SpatialCrop(roi_start=geometry["box_start"], roi_end=geometry["box_end"]), fit])


def _save_atomic(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        np.save(handle, array)
    os.replace(tmp, path)


def write_study_store(study_dir: str | Path, geometry: dict, images_path: str | Path, mask_path: str | Path) -> str:
    """One study's store files from its preprocessed directory; returns what was written (for the log)."""
    import nibabel as nib
    import torch

    study = Path(study_dir)
    images_path, mask_path = Path(images_path), Path(mask_path)
    images_path.parent.mkdir(parents=True, exist_ok=True)
    status_file = study / "status.json"
    status = json.loads(status_file.read_text()).get("status", "ok") if status_file.is_file() else "ok"
    present = [m for m in MODALITIES if (study / f"{m}.nii.gz").is_file()]
    if status not in USABLE_STATUS or not present or not (study / "brain_mask.nii.gz").is_file():
        _save_atomic(images_path, np.zeros(0, np.float16))
        _save_atomic(mask_path, np.zeros(0, np.uint8))
        return f"{study}: status {status}, modalities {present or 'none'}: empty store (no pair reads it)"
    shape = tuple(geometry["atlas_shape"])
    volumes = []
    for m in MODALITIES:
        if m in present:
            volume = np.asarray(nib.load(str(study / f"{m}.nii.gz")).dataobj, dtype=np.float32)
            if volume.shape[:3] != shape:
                raise ValueError(f"{study / f'{m}.nii.gz'}: grid {volume.shape} is not the atlas grid {shape}")
            volumes.append(volume)
        else:
            volumes.append(np.zeros(shape, np.float32))
    brain = np.asarray(nib.load(str(study / "brain_mask.nii.gz")).dataobj) > 0
    stacked = torch.as_tensor(np.stack([*volumes, brain.astype(np.float32)]))
    fitted = np.asarray(grid_transform(geometry)(stacked).detach().cpu())
    images = fitted[: len(MODALITIES)].astype(np.float16)
    for k, m in enumerate(MODALITIES):
        if m not in present:
            images[k] = np.nan
    mask = fitted[len(MODALITIES)] >= 0.5
    _save_atomic(images_path, images)
    _save_atomic(mask_path, np.packbits(mask.ravel()))
    return f"{study}: {','.join(present)} at {list(images.shape[1:])}, {int(mask.sum())} brain voxels"


def _load(path: Path, mmap: bool) -> np.ndarray:
    """np.load, with a truncated or corrupt file named in one line and discarded so the next run rebuilds it."""
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except FileNotFoundError:
        raise StoreFileError(f"{path}: tensor store file missing (run the study_tensors rule)") from None
    except (ValueError, OSError, EOFError) as error:
        path.unlink(missing_ok=True)
        raise StoreFileError(
            f"{path}: truncated or corrupt tensor store file ({type(error).__name__}: {error}); "
            f"deleted it, the next snakemake run rebuilds it (rule study_tensors)"
        ) from None


def open_study(
    images_path: str | Path, mask_path: str | Path, modalities: Sequence[str], image_size: Sequence[int], mmap: bool
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """The study's images (float16), its packed brain mask and the channels of `modalities` in the images.

    With `mmap` the images stay memory-mapped (a batch reads the channels it needs), else the channels of
    `modalities` are copied into memory."""
    images_path, mask_path = Path(images_path), Path(mask_path)
    images = _load(images_path, mmap=True)
    packed = _load(mask_path, mmap=False)
    size = [int(s) for s in image_size]
    n_voxels = int(np.prod(size))
    if images.ndim != 4 or images.shape[0] != len(MODALITIES) or list(images.shape[1:]) != size:
        raise StoreFileError(f"{images_path}: shape {images.shape}, expected {[len(MODALITIES), *size]} "
                             f"(built for another grid? rerun rule study_tensors)")
    if packed.shape != ((n_voxels + 7) // 8,):
        raise StoreFileError(f"{mask_path}: {packed.shape} bytes of packed mask, expected {(n_voxels + 7) // 8}")
    channels = [MODALITIES.index(m) for m in modalities]
    lacking = [m for m, c in zip(modalities, channels) if np.isnan(float(images[c].flat[0]))]
    if lacking:
        raise StoreFileError(f"{images_path}: the study has no {','.join(lacking)}")
    if mmap:
        return images, packed, channels
    return np.ascontiguousarray(images[channels]), packed, list(range(len(channels)))


def unpack_mask(packed: np.ndarray, image_size: Sequence[int]) -> np.ndarray:
    n = int(np.prod(image_size))
    return np.unpackbits(packed, count=n).reshape(tuple(image_size)).astype(bool)


def store_bytes(n_studies: int, image_size: Sequence[int]) -> int:
    """Bytes of a store of n_studies on disk (= in memory with every modality loaded)."""
    n = int(np.prod(image_size))
    return n_studies * (len(MODALITIES) * n * 2 + (n + 7) // 8 + 2 * 128)


def build_store(manifest, geometry: dict, store_dir: str | Path) -> Path:
    """Every study of a manifest (DataFrame with patient, study, dir) written to store_dir, with its grid.json:
    what the tensor_grid and study_tensors rules do, in one process (tests, benchmarks)."""
    store = Path(store_dir)
    store.mkdir(parents=True, exist_ok=True)
    (store / "grid.json").write_text(json.dumps(geometry, indent=2))
    for row in manifest.itertuples():
        write_study_store(row.dir, geometry, *study_files(store, row.patient, row.study))
    return store
