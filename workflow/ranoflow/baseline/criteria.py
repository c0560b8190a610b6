"""Rule-based RANO 2.0 response from tumour segmentations (enhancing-tumour size), two ways.

History-aware (`history_assessment`, RANO's own reference scans): PR/CR against the pair's baseline study, PD
against its nadir, both from the patient's history (pairs.tsv, study_volumes.tsv). Previous-scan
(`assess_pair`, the paper's pairing): the same thresholds with the scan just before as the only reference.
Both: CR when the enhancing tumour is gone, a new enhancing lesion is PD, sizes below RANO's minimum
measurable size neither respond nor progress (`ranoflow.rano`), and growth within 12 weeks after
radiotherapy (LessThan3Months) is optionally not PD. Volumetric: PR at >= 65 % decrease, PD at >= 40 %
increase; bidimensional (sum of perpendicular-diameter products): PR at >= 50 % decrease, PD at >= 25 %.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from ranoflow.baseline.measurements import bidimensional_product, count_new_lesions
from ranoflow.rano import (
    BIDIMENSIONAL,
    CRITERIA,
    MIN_MEASURABLE_MM3,
    VOLUMETRIC,
    Criteria,
    previous_scan_response,
    rano_response,
)
from ranoflow.segmentation import Segmentation, volume_mm3

__all__ = ["BIDIMENSIONAL", "CRITERIA", "VOLUMETRIC", "Criteria"]


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
    min_measurable_mm3: float = MIN_MEASURABLE_MM3
    # pseudo_progression: growth alone is not PD on a study flagged LessThan3Months; as_any: rated as any other
    less_than_3_months: str = "pseudo_progression"

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
    size_baseline: float = float("nan")
    size_nadir: float = float("nan")

    def as_dict(self) -> dict:
        return asdict(self)


def criteria_for(settings: RuleSettings) -> Criteria:
    """The thresholds of the settings' method with its minimum measurable size."""
    if settings.method not in CRITERIA:
        raise ValueError(f"unknown method {settings.method!r}; known: {sorted(CRITERIA)}")
    if settings.method == "volumetric":
        return replace(VOLUMETRIC, min_measurable=settings.min_measurable_mm3)
    return replace(BIDIMENSIONAL, min_measurable=settings.min_diameter_mm**2)


def classify(
    size_previous: float,
    size_current: float,
    criteria: Criteria,
    enhancing_gone: bool,
    new_lesion: bool = False,
) -> str:
    """RANO class from the change against the previous scan; new lesions are PD, a vanished enhancing tumour CR."""
    return previous_scan_response(size_current, size_previous, criteria, enhancing_gone, new_lesion)


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
        criteria_for(settings),
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


def history_assessment(
    sizes: dict[str, float],
    volumes: dict[str, float],
    new_lesions: int,
    settings: RuleSettings,
    less_than_3_months: bool = False,
) -> Assessment:
    """RANO against the patient's history: `sizes`/`volumes` of the roles current, previous, baseline, nadir,
    and the number of new lesions (against the previous scan: a lesion already there was new then)."""
    predicted = rano_response(
        sizes["current"],
        sizes["baseline"],
        sizes["nadir"],
        criteria_for(settings),
        gone=volumes["current"] <= settings.cr_max_volume_mm3,
        new_lesion=new_lesions > 0,
        within_12_weeks=less_than_3_months and settings.less_than_3_months == "pseudo_progression",
    )
    return Assessment(
        volume_previous_mm3=volumes["previous"],
        volume_current_mm3=volumes["current"],
        size_previous=sizes["previous"],
        size_current=sizes["current"],
        change=relative_change(sizes["nadir"], sizes["current"]),
        new_lesions=new_lesions,
        predicted=predicted,
        size_baseline=sizes["baseline"],
        size_nadir=sizes["nadir"],
    )
