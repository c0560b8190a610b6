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


def _axis_windows(n_in: int, n_out: int) -> tuple[slice, slice]:
    """(source, target) slices of a centred crop or pad of n_in voxels to n_out along one axis."""
    if n_out >= n_in:
        before = (n_out - n_in) // 2
        return slice(0, n_in), slice(before, before + n_in)
    start = (n_in - n_out) // 2
    return slice(start, start + n_out), slice(0, n_out)


def _resample(volumes: np.ndarray, shape: Sequence[int], smooth: bool) -> np.ndarray:
    """(C, *in) -> (C, *shape), trilinear on voxel centres (as torch's align_corners=False); with `smooth`
    a Gaussian of sigma (factor - 1) / 2 first along every axis that is shrunk (anti-aliasing)."""
    from scipy import ndimage

    factors = [i / o for i, o in zip(volumes.shape[1:], shape)]
    sigma = [0.0, *[max((f - 1) / 2, 0.0) for f in factors]]
    source = ndimage.gaussian_filter(volumes, sigma) if smooth and any(sigma) else volumes
    axes = [np.clip((np.arange(o) + 0.5) * f - 0.5, 0, i - 1)
            for o, f, i in zip(shape, factors, volumes.shape[1:])]
    coords = np.stack(np.meshgrid(*axes, indexing="ij"))
    return np.stack([ndimage.map_coordinates(v, coords, order=1, mode="nearest") for v in source])


def to_grid(volumes: np.ndarray, geometry: dict) -> np.ndarray:
    """(C, *atlas grid) -> (C, *image_size): the atlas brain box, then resized or centre cropped/padded."""
    start, end = geometry["box_start"], geometry["box_end"]
    box = volumes[:, start[0]:end[0], start[1]:end[1], start[2]:end[2]].astype(np.float32)
    size = geometry["image_size"]
    if geometry["fit"] == "resize":
        return _resample(box, size, smooth=True)
    out = np.zeros((len(box), *size), np.float32)
    windows = [_axis_windows(n, o) for n, o in zip(box.shape[1:], size)]
    out[(slice(None), *[w[1] for w in windows])] = box[(slice(None), *[w[0] for w in windows])]
    return out


def to_atlas(frames: np.ndarray, geometry: dict) -> np.ndarray:
    """(K, *image_size) -> (K, *atlas grid): the inverse of to_grid (zero outside the brain box), to draw
    maps computed on the network's grid over the atlas."""
    start, end = geometry["box_start"], geometry["box_end"]
    box_shape = [e - s for s, e in zip(start, end)]
    frames = np.asarray(frames, np.float32)
    if geometry["fit"] == "resize":
        box = _resample(frames, box_shape, smooth=False)
    else:
        box = np.zeros((len(frames), *box_shape), np.float32)
        windows = [_axis_windows(n, o) for n, o in zip(box_shape, frames.shape[1:])]
        box[(slice(None), *[w[0] for w in windows])] = frames[(slice(None), *[w[1] for w in windows])]
    out = np.zeros((len(frames), *geometry["atlas_shape"]), np.float32)
    out[:, start[0]:end[0], start[1]:end[1], start[2]:end[2]] = box
    return out


def _save_atomic(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        np.save(handle, array)
    os.replace(tmp, path)


def write_study_store(study_dir: str | Path, geometry: dict, images_path: str | Path, mask_path: str | Path) -> str:
    """One study's store files from its preprocessed directory; returns what was written (for the log)."""
    import nibabel as nib

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
    fitted = to_grid(np.stack([*volumes, brain.astype(np.float32)]), geometry)
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
    return np.unpackbits(packed, count=n).reshape(tuple(image_size)).view(bool)  # 0/1 bytes are valid bools


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
