"""Load and validate 3D NIfTI volumes; every failure names the offending file."""

from __future__ import annotations

import zlib
from pathlib import Path

import nibabel as nib
import numpy as np


def configure_itk(threads: int, seed: int | None) -> None:
    """Set ITK's thread count and ANTs' random seed; call before ITK creates its first filter.

    With a seed, ANTs' sampling is reproducible; registration results are bit-identical only with
    one thread (ITK splits metric sums per thread), so callers pass threads=1 for deterministic runs.
    """
    import os

    os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = str(max(1, int(threads)))
    if seed is None:
        os.environ.pop("ANTS_RANDOM_SEED", None)
    else:
        os.environ["ANTS_RANDOM_SEED"] = str(int(seed))


class ImageError(ValueError):
    """An input volume that cannot be used (unreadable, truncated, wrong dimensionality, empty)."""

    def __init__(self, path: str | Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = str(path)
        self.problem = problem


def read_header(path: str | Path) -> nib.Nifti1Image:
    """The NIfTI proxy image (header only, data not read); ImageError if missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise ImageError(path, "file does not exist")
    try:
        return nib.load(path)
    except Exception as error:  # nibabel raises many types for corrupt headers
        raise ImageError(path, f"unreadable NIfTI ({type(error).__name__}: {error})") from error


def spatial_shape(image: nib.Nifti1Image, path: str | Path) -> tuple[int, int, int]:
    """The 3D shape after dropping trailing singleton axes; ImageError for 2D or true 4D data."""
    shape = tuple(int(n) for n in image.shape)
    while len(shape) > 3 and shape[-1] == 1:
        shape = shape[:-1]
    if len(shape) != 3:
        raise ImageError(path, f"expected a 3D image, got shape {image.shape}")
    if min(shape) < 2:
        raise ImageError(path, f"expected a 3D image, got a degenerate shape {image.shape} (a 2D slice?)")
    return shape  # type: ignore[return-value]


def voxel_spacing(path: str | Path) -> tuple[float, float, float]:
    """Voxel size in mm from the header alone (used to choose the anchor modality)."""
    image = read_header(path)
    spatial_shape(image, path)
    return tuple(float(z) for z in image.header.get_zooms()[:3])  # type: ignore[return-value]


def validate_volume(path: str | Path) -> np.ndarray:
    """Read the whole volume and check it is a finite, non-empty 3D image; returns its data."""
    image = read_header(path)
    shape = spatial_shape(image, path)
    try:
        data = np.asarray(image.dataobj, dtype=np.float32).reshape(shape)
    except (EOFError, OSError, ValueError, zlib.error) as error:
        raise ImageError(path, f"truncated or corrupt data ({type(error).__name__}: {error})") from error
    if not np.isfinite(data).all():
        raise ImageError(path, "contains NaN or infinite values")
    if float(data.max()) == float(data.min()):
        raise ImageError(path, f"empty image (every voxel is {float(data.min())})")
    return data


def load_volume(path: str | Path):
    """Validate the file, then read it as a float ANTsImage (ITK keeps its physical header)."""
    import ants

    validate_volume(path)
    try:
        image = ants.image_read(str(path), dimension=3, pixeltype="float")
    except Exception as error:
        raise ImageError(path, f"ITK cannot read it ({error})") from error
    if image.dimension != 3:
        raise ImageError(path, f"expected a 3D image, ITK reads {image.dimension}D")
    return image


def save_volume(image, path: str | Path, dtype: str = "float32") -> None:
    """Write an ANTsImage as NIfTI with the given numpy dtype (uint8 for masks and labels)."""
    import ants

    pixeltype = {"float32": "float", "uint8": "unsigned char"}[dtype]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    ants.image_write(image.clone(pixeltype), str(path))
