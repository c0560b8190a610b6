"""RANO 2.0 response of a follow-up study from the patient's enhancing-tumour history.

RANO rates a follow-up against two earlier studies, not against the scan just before it: response (PR)
against the **baseline** (the post-treatment study) and progression (PD) against the **nadir** (the smallest
tumour measured since baseline, the baseline included). CR is the disappearance of all enhancing tumour; a
new measurable lesion is PD. Within 12 weeks after radiotherapy, growth alone is not progression
(pseudo-progression); a new lesion still is.

Volumetric thresholds (RANO 2.0): PR at >= 65 % decrease of the enhancing volume, PD at >= 40 % increase.
Bidimensional (sum of perpendicular-diameter products): PR at >= 50 % decrease, PD at >= 25 % increase.
"""

from __future__ import annotations

from dataclasses import dataclass

# RANO 2.0 (Wen et al., J Clin Oncol 2023;41:5187-5199): measurable enhancing disease is at least
# 10 x 10 mm in two perpendicular diameters; its volumetric counterpart is a lesion of at least 1 cm³
# (1 mL, a 10 mm cube). Smaller enhancing volumes are non-measurable: they can neither be a PR nor make a PD
# by growth, so noise-level volumes on a nadir of 0 are not progression.
MIN_MEASURABLE_MM3 = 1000.0
# Bidimensional counterpart: both diameters >= 10 mm, i.e. a product of at least 100 mm².
MIN_MEASURABLE_MM2 = 100.0


@dataclass(frozen=True)
class Criteria:
    """Thresholds of one RANO measurement method (fractions of the reference size)."""

    pr_decrease: float
    pd_increase: float
    min_measurable: float


VOLUMETRIC = Criteria(pr_decrease=0.65, pd_increase=0.40, min_measurable=MIN_MEASURABLE_MM3)
BIDIMENSIONAL = Criteria(pr_decrease=0.50, pd_increase=0.25, min_measurable=MIN_MEASURABLE_MM2)
CRITERIA: dict[str, Criteria] = {"volumetric": VOLUMETRIC, "bidimensional": BIDIMENSIONAL}
# Keeps exact threshold edges (e.g. 65 % of a voxel count) on the inclusive side.
EDGE = 1e-9


def is_response(current: float, baseline: float, criteria: Criteria) -> bool:
    """PR-sized decrease from a measurable baseline."""
    return baseline >= criteria.min_measurable and current <= (1.0 - criteria.pr_decrease) * baseline + EDGE


def is_growth(current: float, nadir: float, criteria: Criteria) -> bool:
    """PD-sized increase from the nadir, to a measurable size (a nadir of 0 needs a measurable tumour)."""
    return current >= criteria.min_measurable and current >= (1.0 + criteria.pd_increase) * nadir - EDGE


def rano_response(
    current: float,
    baseline: float,
    nadir: float,
    criteria: Criteria = VOLUMETRIC,
    gone: bool | None = None,
    new_lesion: bool = False,
    within_12_weeks: bool = False,
) -> str:
    """CR, PR, SD or PD of a follow-up; `gone`: no enhancing tumour left (default: current size 0)."""
    if new_lesion:
        return "PD"
    if is_growth(current, nadir, criteria) and not within_12_weeks:
        return "PD"
    if (current <= 0) if gone is None else gone:
        return "CR"
    if is_response(current, baseline, criteria):
        return "PR"
    return "SD"


def previous_scan_response(
    current: float,
    previous: float,
    criteria: Criteria = VOLUMETRIC,
    gone: bool | None = None,
    new_lesion: bool = False,
) -> str:
    """The same thresholds with the previous scan as both baseline and nadir (the paper's pairing)."""
    return rano_response(current, previous, previous, criteria, gone, new_lesion)
