"""Rule-based RANO 2.0 response from two tumour segmentations (enhancing-tumour size change).

Volumetric: CR when the enhancing tumour is gone, PR at >= 65 % decrease, PD at >= 40 % increase
or a new enhancing lesion, SD otherwise. Bidimensional (optional): the same with the sum of
products of perpendicular axial diameters, PR at >= 50 % decrease and PD at >= 25 % increase.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ranoflow.baseline.measurements import (
    Segmentation,
    bidimensional_product,
    count_new_lesions,
    volume_mm3,
)


@dataclass(frozen=True)
class Criteria:
    """Thresholds of one RANO measurement method (fractions of the reference size)."""

    pr_decrease: float
    pd_increase: float


VOLUMETRIC = Criteria(pr_decrease=0.65, pd_increase=0.40)
BIDIMENSIONAL = Criteria(pr_decrease=0.50, pd_increase=0.25)
CRITERIA: dict[str, Criteria] = {"volumetric": VOLUMETRIC, "bidimensional": BIDIMENSIONAL}


@dataclass(frozen=True)
class RuleSettings:
    """Settings of the rule-based baseline (the `baseline` config section, minus I/O choices)."""

    source: str = "deepbratumia"
    method: str = "volumetric"
    cr_max_volume_mm3: float = 0.0
    new_lesion: bool = True
    new_lesion_margin_mm: float = 10.0
    new_lesion_min_volume_mm3: float = 100.0
    min_diameter_mm: float = 10.0
    max_target_lesions: int = 3

    @classmethod
    def from_config(cls, section: dict) -> RuleSettings:
        names = set(cls.__dataclass_fields__)
        return cls(**{key: value for key, value in section.items() if key in names})


@dataclass(frozen=True)
class Assessment:
    """Measurements of a pair and the rule's answer."""

    volume_previous_mm3: float
    volume_current_mm3: float
    size_previous: float
    size_current: float
    change: float
    new_lesions: int
    predicted: str

    def as_dict(self) -> dict:
        return asdict(self)


def classify(
    size_previous: float,
    size_current: float,
    criteria: Criteria,
    enhancing_gone: bool,
    new_lesion: bool = False,
) -> str:
    """RANO class from a size change; new lesions are PD, a vanished enhancing tumour CR."""
    if new_lesion:
        return "PD"
    if enhancing_gone:
        return "CR"
    if size_previous <= 0:
        return "PD" if size_current > 0 else "SD"
    change = (size_current - size_previous) / size_previous
    # A small tolerance keeps exact threshold edges (e.g. 65 % of a voxel count) on the inclusive side.
    if change <= -criteria.pr_decrease + 1e-9:
        return "PR"
    if change >= criteria.pd_increase - 1e-9:
        return "PD"
    return "SD"


def relative_change(size_previous: float, size_current: float) -> float:
    """(current - previous) / previous; NaN when the reference size is zero."""
    return (size_current - size_previous) / size_previous if size_previous > 0 else float("nan")


def assess_pair(
    previous: Segmentation,
    current: Segmentation,
    settings: RuleSettings,
    volume_previous_mm3: float | None = None,
    volume_current_mm3: float | None = None,
) -> Assessment:
    """Apply the RANO rule to two segmentations; volumes may come precomputed (measured JSON)."""
    if volume_previous_mm3 is None:
        volume_previous_mm3 = volume_mm3(previous.enhancing, previous.zooms)
    if volume_current_mm3 is None:
        volume_current_mm3 = volume_mm3(current.enhancing, current.zooms)
    if settings.method == "bidimensional":
        size_previous = bidimensional_product(previous, settings.min_diameter_mm, settings.max_target_lesions)
        size_current = bidimensional_product(current, settings.min_diameter_mm, settings.max_target_lesions)
    elif settings.method == "volumetric":
        size_previous, size_current = volume_previous_mm3, volume_current_mm3
    else:
        raise ValueError(f"unknown method {settings.method!r}; known: {sorted(CRITERIA)}")
    new_lesions = (
        count_new_lesions(previous, current, settings.new_lesion_margin_mm, settings.new_lesion_min_volume_mm3)
        if settings.new_lesion
        else 0
    )
    predicted = classify(
        size_previous,
        size_current,
        CRITERIA[settings.method],
        enhancing_gone=volume_current_mm3 <= settings.cr_max_volume_mm3,
        new_lesion=new_lesions > 0,
    )
    return Assessment(
        volume_previous_mm3=volume_previous_mm3,
        volume_current_mm3=volume_current_mm3,
        size_previous=size_previous,
        size_current=size_current,
        change=relative_change(size_previous, size_current),
        new_lesions=new_lesions,
        predicted=predicted,
    )
