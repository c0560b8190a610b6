"""Preprocessing QC: per-study figure and status, cohort tables with outliers flagged."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from ranoflow.checksum import study_checksum
from ranoflow.preprocess.faults import raise_machine_fault

STATUS_KEYS = ("status", "reason", "anchor", "dice", "similarity", "seconds")
REGISTRATION_COLUMNS = [
    "patient", "study", "status", "reason", "anchor", "skull_strip", "dice", "similarity",
    "brain_volume_ml", "seconds",
]
# checksum: of the study's preprocessed images, the key of training caches and checkpoints
MANIFEST_COLUMNS = ["patient", "study", "status", "reason", "dir", "modalities", "checksum"]

log = logging.getLogger(__name__)


def failed_status(error: Exception, on_error: str) -> dict:
    """The status record of a study whose job failed on its data. With on_error other than "skip" the
    error is raised; a fault of the machine (full disk, I/O error, out of memory) is always raised."""
    if on_error != "skip":
        raise error
    raise_machine_fault(error)
    log.exception("study failed, skipped (on_error: skip)")
    return {"status": "failed", "reason": f"{type(error).__name__}: {error}"}


def judge(dice: float, similarity: float, min_dice: float, min_similarity: float) -> tuple[str, str]:
    """("ok" | "flagged", reason) from the study's own QC figures."""
    reasons = []
    if not dice >= min_dice:
        reasons.append(f"brain-mask Dice {dice:.3f} < {min_dice}")
    if not similarity >= min_similarity:
        reasons.append(f"similarity {similarity:.3f} < {min_similarity}")
    return ("flagged", "; ".join(reasons)) if reasons else ("ok", "")


DEFAULT_MIN_COVERAGE_RATIO = 0.8  # the schema's default of preprocessing.qc.min_coverage_ratio


class CoverageError(ValueError):
    """A modality covers far less of the brain than the study's others: a fault of the data."""


def brain_coverage(image: np.ndarray, mask: np.ndarray) -> float:
    """Share of the brain-mask voxels that hold signal: every voxel but those at the image's most frequent
    value inside the mask (a field of view that misses part of the brain leaves them at one constant, the
    zero outside the scan, whatever normalisation followed)."""
    inside = image[mask > 0]
    if inside.size == 0:
        return 0.0
    _, counts = np.unique(inside, return_counts=True)
    return float(1 - counts.max() / inside.size) if counts.max() > 1 else 1.0


def coverage_problem(coverages: dict[str, float], min_ratio: float) -> str | None:
    """One line naming each modality whose brain coverage is below min_ratio times the study's best one."""
    if len(coverages) < 2:
        return None
    best_name, best = max(coverages.items(), key=lambda item: item[1])
    short = [f"{name} covers {100 * value:.0f} % of the brain mask" for name, value in coverages.items()
             if value < min_ratio * best]
    if not short:
        return None
    return (f"{'; '.join(short)}, {best_name} {100 * best:.0f} % (below preprocessing.qc.min_coverage_ratio "
            f"{min_ratio} of the best modality: a field of view that misses part of the brain)")


def write_status(path: Path, record: dict) -> None:
    """status.json with the contract's keys first (missing ones as null), extra keys after."""
    ordered = {key: record.get(key) for key in STATUS_KEYS}
    ordered.update({k: v for k, v in record.items() if k not in ordered})
    Path(path).write_text(json.dumps(ordered, indent=2, default=float) + "\n")


def _middle(volume: np.ndarray, mask: np.ndarray | None, axis: int) -> int:
    source = mask if mask is not None and mask.any() else volume
    positions = np.argwhere(source > 0)
    return int(np.median(positions[:, axis])) if positions.size else volume.shape[axis] // 2


def _panel(ax, image: np.ndarray, outline: np.ndarray | None, axis: int, title: str, aspect: float) -> None:
    index = _middle(image, outline, axis)
    plane = np.take(image, index, axis=axis)
    ax.imshow(np.rot90(plane), cmap="gray", aspect=aspect)
    if outline is not None and outline.any():
        ax.contour(np.rot90(np.take(outline, index, axis=axis)), levels=[0.5], colors="r", linewidths=0.8)
    ax.set_title(title, fontsize=8)
    ax.axis("off")


def qc_figure(path: Path, native_anchor, native_mask, grid_anchor, atlas_mask, title: str) -> None:
    """Top row: brain mask on the native anchor; bottom row: registered anchor with the atlas outline."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(9, 6))
    rows = [
        (native_anchor, native_mask, "native anchor + brain mask"),
        (grid_anchor, atlas_mask, "registered anchor + atlas mask"),
    ]
    for row, (image, outline, label) in zip(axes, rows):
        data = image.numpy() if image is not None else np.zeros((2, 2, 2))
        mask = outline.numpy() if outline is not None else None
        spacing = image.spacing if image is not None else (1.0, 1.0, 1.0)
        for axis, (ax, name) in enumerate(zip(row, ("sagittal", "coronal", "axial"))):
            others = [s for i, s in enumerate(spacing) if i != axis]
            _panel(ax, data, mask, axis, f"{label} ({name})", aspect=others[1] / others[0])
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _read_status(study_dir: Path) -> dict:
    path = Path(study_dir) / "status.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        return {"status": "failed", "reason": f"unreadable {path}: {error}"}


def study_dirs(dirs: list[str | Path]) -> list[Path]:
    """Study folders of preprocess_manifest's inputs: a study folder itself (it has status.json), or a
    register_patient output's study folders."""
    found: list[Path] = []
    for folder in map(Path, dirs):
        batched = [] if (folder / "status.json").is_file() else sorted(
            sub for sub in folder.iterdir() if (sub / "status.json").is_file()
        )
        found.extend(batched or [folder])  # a study folder without status.json fails in aggregate, by name
    return found


def aggregate(study_dirs: list[str | Path], outlier_mad: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(registration QC table, manifest) over the study directories results/preprocessed/{patient}/{study}.

    Besides each study's own thresholds, a study whose Dice lies more than outlier_mad robust
    standard deviations (1.4826 * MAD) below the cohort median of ok studies is flagged.
    """
    rows = []
    for study_dir in map(Path, study_dirs):
        status = _read_status(study_dir)
        rows.append(
            {
                "patient": study_dir.parent.name,
                "study": study_dir.name,
                "status": status.get("status", "failed"),
                "reason": status.get("reason") or "",
                "anchor": status.get("anchor") or "",
                "skull_strip": status.get("skull_strip") or "",
                "dice": status.get("dice"),
                "similarity": status.get("similarity"),
                "brain_volume_ml": status.get("brain_volume_ml"),
                "seconds": status.get("seconds"),
                "dir": str(study_dir),
                "modalities": ",".join(status.get("modalities") or []),
                "checksum": study_checksum(study_dir),
            }
        )
    table = pd.DataFrame(rows, columns=REGISTRATION_COLUMNS + ["dir", "modalities", "checksum"])
    ok = table["status"] == "ok"
    dice = pd.to_numeric(table["dice"], errors="coerce")
    if ok.sum() >= 5 and outlier_mad > 0:
        median = dice[ok].median()
        spread = 1.4826 * (dice[ok] - median).abs().median()
        cut = median - outlier_mad * max(spread, 0.005)
        outliers = ok & (dice < cut)
        table.loc[outliers, "status"] = "flagged"
        table.loc[outliers, "reason"] = [f"cohort outlier: Dice {d:.3f} < {cut:.3f}" for d in dice[outliers]]
    table = table.sort_values(["patient", "study"]).reset_index(drop=True)
    return table[REGISTRATION_COLUMNS], table[MANIFEST_COLUMNS]
