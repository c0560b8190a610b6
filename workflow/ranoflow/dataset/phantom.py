"""Analytic head phantom for the synthetic LUMIERE tree: tissue labels evaluated at world points.

The head is a set of nested ellipsoid shells (scalp, skull, CSF, grey and white matter) with two
ventricles, in a canonical "atlas" space (RAS, mm, centred on the head). A study places it in the scanner
with a rigid pose and a per-patient scale; tumours (ellipsoidal lesions with an enhancing rim around a
necrotic core, surrounded by edema) and a resection cavity live in atlas space. Labels are evaluated
point-wise, so every grid (isotropic CT1, thick-slice T1/T2/FLAIR, atlas grid) is rendered exactly,
without interpolation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import nibabel as nib
import numpy as np

from ranoflow import lumiere

# Tissue codes of the label maps.
BACKGROUND, SCALP, SKULL, CSF, GM, WM, CAVITY, EDEMA, ENHANCING, NECROSIS = range(10)
N_TISSUES = 10
BRAIN_TISSUES = (CSF, GM, WM, CAVITY, EDEMA, ENHANCING, NECROSIS)

# Semi-axes (x right, y anterior, z superior) of the scalp surface, mm, and the normalised radius
# at which each inner shell starts.
HEAD_AXES = np.array([76.0, 94.0, 82.0])
SKULL_RHO, CSF_RHO, GM_RHO, WM_RHO = 0.94, 0.875, 0.845, 0.78
GYRI_DEPTH, GYRI_FREQ = 0.025, 0.28  # GM/WM boundary undulation (normalised radius, rad/mm)
VENTRICLE_CENTRES = np.array([[-9.0, 4.0, 10.0], [9.0, 4.0, 10.0]])
VENTRICLE_AXES = np.array([6.0, 22.0, 9.0])
CAVITY_RIM_MM = 3.0  # gliosis/edema around a resection cavity

# Relative signal of each tissue per modality (rows follow the tissue codes). CT1: enhancing rim bright;
# T2/FLAIR: edema bright; T1: tumour dark; FLAIR suppresses free fluid (CSF, cavity).
CONTRAST: dict[str, np.ndarray] = {
    "CT1": np.array([0.0, 0.90, 0.08, 0.15, 0.45, 0.65, 0.12, 0.38, 1.15, 0.15]),
    "T1": np.array([0.0, 0.90, 0.08, 0.15, 0.45, 0.65, 0.12, 0.38, 0.40, 0.15]),
    "T2": np.array([0.0, 0.60, 0.05, 1.00, 0.55, 0.40, 1.00, 0.85, 0.60, 0.90]),
    "FLAIR": np.array([0.0, 0.60, 0.05, 0.10, 0.50, 0.40, 0.12, 1.00, 0.65, 0.55]),
}
# Tissue code -> DeepBraTumIA label (1 enhancing, 2 necrotic/non-enhancing, 3 edema) and HD-GLIO label.
DBT_LABEL = np.zeros(N_TISSUES, np.uint8)
DBT_LABEL[[ENHANCING, NECROSIS, EDEMA]] = [lumiere.DBT_ENHANCING, lumiere.DBT_NECROTIC, lumiere.DBT_EDEMA]
HDGLIO_LABEL = np.zeros(N_TISSUES, np.uint8)
HDGLIO_LABEL[[ENHANCING, NECROSIS, EDEMA]] = [
    lumiere.HDGLIO_ENHANCING,
    lumiere.HDGLIO_NONENHANCING,
    lumiere.HDGLIO_NONENHANCING,
]
IS_BRAIN = np.isin(np.arange(N_TISSUES), BRAIN_TISSUES)


Points = tuple[np.ndarray, np.ndarray, np.ndarray]  # x, y, z coordinate arrays (mm) of equal shape


@dataclass(frozen=True)
class Lesion:
    """One ellipsoidal lesion in atlas space; volumes in mm^3 (enhancing rim, necrosis = fraction of it)."""

    centre: tuple[float, float, float]
    rotation: tuple[tuple[float, ...], ...]  # 3x3, columns are the lesion's axes
    axes: tuple[float, float, float]  # relative axis lengths, product 1 (volume-preserving)
    enhancing: float
    necrotic_fraction: float
    edema_factor: float  # edema outer radius / enhancing outer radius

    def radii(self) -> tuple[float, float, float]:
        """(necrosis, enhancing, edema) outer radii in mm of the volume-equivalent sphere."""
        necrotic = self.necrotic_fraction * self.enhancing
        r_necrosis = np.cbrt(3.0 * necrotic / (4.0 * np.pi))
        r_enhancing = np.cbrt(3.0 * (necrotic + self.enhancing) / (4.0 * np.pi))
        return float(r_necrosis), float(r_enhancing), float(r_enhancing * self.edema_factor)

    def distance2(self, points: Points) -> np.ndarray:
        """Squared ellipsoidal radius (mm^2) of atlas points in this lesion's frame."""
        offset = [p - np.float32(c) for p, c in zip(points, self.centre)]
        total = np.zeros_like(offset[0])
        for j in range(3):
            local = sum(np.float32(self.rotation[i][j]) * offset[i] for i in range(3))
            total += (local / np.float32(self.axes[j])) ** 2
        return total


@dataclass(frozen=True)
class Tumour:
    """Tumour state of one study: lesions and, after surgery, a resection cavity (centre, radius in mm)."""

    lesions: tuple[Lesion, ...] = ()
    cavity: tuple[tuple[float, float, float], float] | None = None

    @property
    def enhancing(self) -> float:
        """Nominal enhancing volume in mm^3 (sum over lesions)."""
        return float(sum(lesion.enhancing for lesion in self.lesions))


@dataclass(frozen=True)
class Head:
    """Per-patient anatomy: gyral phase of the GM/WM boundary and ventricle size."""

    gyri_phase: tuple[float, float, float] = (0.0, 0.0, 0.0)
    ventricles: float = 1.0


@dataclass(frozen=True)
class Pose:
    """Atlas -> scanner placement: world = scale * rotation @ atlas + translation (mm)."""

    rotation: np.ndarray = field(default_factory=lambda: np.eye(3))
    translation: np.ndarray = field(default_factory=lambda: np.zeros(3))
    scale: float = 1.0


@dataclass(frozen=True)
class Grid:
    """An axis-aligned voxel grid: shape and voxel -> world affine (4x4, diagonal)."""

    shape: tuple[int, int, int]
    affine: np.ndarray

    @classmethod
    def centred(cls, fov_mm: tuple[float, float, float], spacing: tuple[float, float, float]) -> Grid:
        """RAS grid covering `fov_mm`, centred on the world origin."""
        shape = tuple(int(np.ceil(f / s)) for f, s in zip(fov_mm, spacing))
        affine = np.diag([*spacing, 1.0])
        affine[:3, 3] = -(np.array(shape) - 1) / 2.0 * np.array(spacing)
        return cls(shape, affine)  # type: ignore[arg-type]

    @property
    def spacing(self) -> np.ndarray:
        return np.diag(self.affine)[:3].copy()

    def axes(self, slice_offset: float = 0.0) -> list[np.ndarray]:
        """World coordinate of the voxel centres along each axis (the 3rd shifted by `slice_offset` voxels)."""
        offsets = (0.0, 0.0, slice_offset)
        return [
            ((np.arange(n) + o) * self.affine[a, a] + self.affine[a, 3]).astype(np.float32)
            for a, (n, o) in enumerate(zip(self.shape, offsets))
        ]

    def atlas_points(self, pose: Pose, slice_offset: float = 0.0) -> Points:
        """Atlas coordinates of the voxel centres for a head placed by `pose` (atlas = R^T (w - t) / s)."""
        matrix = np.asarray(pose.rotation).T / pose.scale
        shift = -matrix @ np.asarray(pose.translation)
        axes = self.axes(slice_offset)
        grids = [axes[0][:, None, None], axes[1][None, :, None], axes[2][None, None, :]]
        return tuple(  # type: ignore[return-value]
            (np.float32(matrix[a, 0]) * grids[0] + np.float32(matrix[a, 1]) * grids[1])
            + (np.float32(matrix[a, 2]) * grids[2] + np.float32(shift[a]))
            for a in range(3)
        )


def anatomy_labels(points: Points, head: Head) -> np.ndarray:
    """Healthy tissue codes of atlas points."""
    x, y, z = points
    rho2 = (x / np.float32(HEAD_AXES[0])) ** 2 + (y / np.float32(HEAD_AXES[1])) ** 2
    rho2 += (z / np.float32(HEAD_AXES[2])) ** 2
    labels = np.full(x.shape, BACKGROUND, np.uint8)
    labels[rho2 <= 1.0] = SCALP
    labels[rho2 <= SKULL_RHO**2] = SKULL
    labels[rho2 <= CSF_RHO**2] = CSF
    labels[rho2 <= GM_RHO**2] = GM
    undulation = np.sin(np.float32(GYRI_FREQ) * x + np.float32(head.gyri_phase[0]))
    undulation *= np.sin(np.float32(GYRI_FREQ) * y + np.float32(head.gyri_phase[1]))
    undulation *= np.sin(np.float32(GYRI_FREQ) * z + np.float32(head.gyri_phase[2]))
    labels[rho2 <= (WM_RHO + GYRI_DEPTH * undulation) ** 2] = WM
    axes = VENTRICLE_AXES * head.ventricles
    for centre in VENTRICLE_CENTRES:
        distance2 = sum(((p - np.float32(c)) / np.float32(a)) ** 2 for p, c, a in zip(points, centre, axes))
        labels[distance2 <= 1.0] = CSF
    return labels


def tumour_labels(points: Points, labels: np.ndarray, tumour: Tumour) -> np.ndarray:
    """Paint cavity, edema, enhancing rim and necrosis over healthy labels, inside the brain only."""
    labels = labels.copy()
    brain = IS_BRAIN[labels]
    if tumour.cavity is not None:
        centre, radius = tumour.cavity
        distance2 = sum((p - np.float32(c)) ** 2 for p, c in zip(points, centre))
        labels[brain & (distance2 <= (radius + CAVITY_RIM_MM) ** 2)] = EDEMA
        labels[brain & (distance2 <= radius**2)] = CAVITY
    distances = [(lesion.distance2(points), lesion.radii()) for lesion in tumour.lesions]
    for distance2, (_, _, r_edema) in distances:
        labels[brain & (distance2 <= r_edema**2) & (labels != CAVITY)] = EDEMA
    for distance2, (_, r_enhancing, _) in distances:
        labels[brain & (distance2 <= r_enhancing**2)] = ENHANCING
    for distance2, (r_necrosis, _, _) in distances:
        labels[brain & (distance2 <= r_necrosis**2)] = NECROSIS
    return labels


def render_labels(grid: Grid, pose: Pose, head: Head, tumour: Tumour, samples: int = 1) -> list[np.ndarray]:
    """Label volumes at `samples` evenly spread positions across each voxel's thickness (3rd axis)."""
    offsets = (np.arange(samples) + 0.5) / samples - 0.5
    labels = []
    for offset in offsets:
        points = grid.atlas_points(pose, float(offset))
        labels.append(tumour_labels(points, anatomy_labels(points, head), tumour))
    return labels


def contrast_image(labels: list[np.ndarray], modality: str) -> np.ndarray:
    """Noise-free relative signal, averaged over the slice samples (partial volume of thick slices)."""
    return np.mean([CONTRAST[modality][sample] for sample in labels], axis=0, dtype=np.float32)


def brain_fraction(labels: list[np.ndarray]) -> np.ndarray:
    """Fraction of each voxel's slice samples inside the brain."""
    return np.mean([IS_BRAIN[sample] for sample in labels], axis=0, dtype=np.float32)


def acquire(
    signal: np.ndarray,
    grid: Grid,
    rng: np.random.Generator,
    gain: float,
    noise: float,
    bias: float = 0.15,
) -> np.ndarray:
    """Scanner model: gain, smooth multiplicative bias field (up to `bias` per 100 mm) and Rician noise."""
    direction = rng.normal(size=3)
    direction *= rng.uniform(0.0, bias) / np.linalg.norm(direction) / 100.0
    x, y, z = (np.exp(d * axis).astype(np.float32) for d, axis in zip(direction, grid.axes()))
    clean = np.float32(gain) * signal * (x[:, None, None] * y[None, :, None] * z[None, None, :])
    sigma = np.float32(noise * gain * CONTRAST["T1"][WM])
    real = clean + sigma * rng.standard_normal(signal.shape, dtype=np.float32)
    imaginary = sigma * rng.standard_normal(signal.shape, dtype=np.float32)
    return np.clip(np.rint(np.hypot(real, imaginary)), 0, np.iinfo(np.int16).max).astype(np.int16)


def nifti(data: np.ndarray, grid: Grid) -> nib.Nifti1Image:
    """A NIfTI image in mm with scanner qform/sform."""
    image = nib.Nifti1Image(data, grid.affine)
    image.header.set_xyzt_units("mm")
    image.set_qform(grid.affine, code=1)
    image.set_sform(grid.affine, code=1)
    return image


def dbt_volumes(seg: np.ndarray, grid: Grid) -> dict[str, float]:
    """measured_volumes_in_mm3.json content of a DeepBraTumIA label map."""
    voxel = float(abs(np.linalg.det(grid.affine[:3, :3])))
    counts = np.bincount(seg.ravel(), minlength=4)
    return {key: round(float(counts[label]) * voxel, 3) for label, key in lumiere.DBT_VOLUME_KEYS.items()}

