"""`rano_expert`: RANO 2010 as LUMIERE's raters practised it, from each study's measures (study_measures.tsv).

Wen et al. 2010 (J Clin Oncol 28:1963) and what the LUMIERE rationales show ("T2 progression", "new
non-target L.", "Target L.: 13mm x 26mm"). Clauses, checked in this order for a follow-up study:

1. new lesion -> PD: an enhancing component (of at least `new_lesion_min_volume_mm3`) farther than
   `new_lesion_margin_mm` from every lesion of the previous study;
2. enhancing progression -> PD: the size (bidimensional: sum of largest-axial-diameter x perpendicular
   products of the measurable lesions; volumetric: enhancing volume) grew by `pd_increase` or more against
   the nadir, the current disease measurable; from a non-measurable nadir the lesion must have become
   measurable and grown by at least `pd_min_increase` (RANO: "a lesion that becomes measurable");
3. T2/FLAIR progression -> PD: the non-enhancing (edema) volume grew by `t2_flair_increase` and by at least
   `t2_flair_min_increase_mm3` against its own nadir;
   (2 and 3 are growth: on a study flagged LessThan3Months they are not PD with `less_than_3_months:
   pseudo_progression`; a new lesion still is);
4. CR: no enhancing tumour (`cr_max_volume_mm3`), confirmed on the patient's next study
   (`cr_confirmation`) and no T2/FLAIR progression (clause 3); an unconfirmed disappearance is SD;
5. PR: the size decreased by `pr_decrease` or more against the (measurable) baseline;
6. else SD.

The baseline is the latest Post-Op study before the follow-up (pairs.tsv). After a re-resection (a later
Post-Op study) RANO takes the new post-operative scan as the new baseline (`re_resection: reset`);
`keep` keeps the course from the first baseline and leaves the re-resection's own scans out of the nadir.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from ranoflow.baseline.study_measures import LesionPoints

BASELINE_RATINGS = ("Post-Op", "Post-Op/PD")
# RANO 2010 thresholds of the two measurement methods (fractions of the reference size) and the size at
# which disease is measurable: two perpendicular diameters of 10 mm (100 mm²), its volume 1 cm³.
METHODS = {
    "bidimensional": {"pr_decrease": 0.50, "pd_increase": 0.25, "floor": 100.0},
    "volumetric": {"pr_decrease": 0.65, "pd_increase": 0.40, "floor": 1000.0},
}
EDGE = 1e-9


@dataclass(frozen=True)
class ExpertSettings:
    """The `baseline.expert` config section (schema: every key with its RANO reading)."""

    method: str = "bidimensional"
    pr_decrease: float | None = None  # None: the method's RANO threshold
    pd_increase: float | None = None
    min_measurable: float | None = None  # mm² (bidimensional) or mm³ (volumetric); None: RANO's
    pd_min_increase: float = 50.0
    t2_flair_progression: bool = True
    t2_flair_increase: float = 0.40
    t2_flair_min_increase_mm3: float = 5000.0
    new_lesion: bool = True
    new_lesion_margin_mm: float = 10.0
    cr_max_volume_mm3: float = 0.0
    cr_confirmation: bool = True
    re_resection: str = "keep"
    less_than_3_months: str = "pseudo_progression"

    @classmethod
    def from_config(cls, section: dict) -> ExpertSettings:
        names = set(cls.__dataclass_fields__)
        settings = cls(**{key: value for key, value in section.items() if key in names})
        if settings.method not in METHODS:
            raise ValueError(f"baseline.expert.method: unknown method {settings.method!r}; known: {sorted(METHODS)}")
        if settings.re_resection not in ("reset", "keep"):
            raise ValueError(f"baseline.expert.re_resection: {settings.re_resection!r}; allowed: reset, keep")
        return settings

    def threshold(self, name: str) -> float:
        value = {"pr_decrease": self.pr_decrease, "pd_increase": self.pd_increase,
                 "floor": self.min_measurable}[name]
        return METHODS[self.method][name] if value is None else float(value)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Course:
    """The measures a follow-up is rated from (sizes in the method's unit; t2: edema volume, mm³)."""

    size: float
    baseline_size: float
    nadir_size: float
    t2: float
    t2_nadir: float
    enhancing_mm3: float
    next_enhancing_mm3: float | None = None  # the patient's next study; None: there is none
    new_lesions: int = 0
    within_12_weeks: bool = False


def enhancing_progression(course: Course, settings: ExpertSettings) -> bool:
    floor, increase = settings.threshold("floor"), settings.threshold("pd_increase")
    if course.size < floor - EDGE or course.size < (1.0 + increase) * course.nadir_size - EDGE:
        return False
    if course.nadir_size < floor:  # non-measurable nadir: became measurable, with an absolute minimum
        return course.size - course.nadir_size >= settings.pd_min_increase - EDGE
    return True


def t2_flair_progression(course: Course, settings: ExpertSettings) -> bool:
    if not settings.t2_flair_progression:
        return False
    growth = course.t2 - course.t2_nadir
    return growth >= settings.t2_flair_min_increase_mm3 - EDGE and course.t2 >= (
        1.0 + settings.t2_flair_increase
    ) * course.t2_nadir - EDGE


def rate(course: Course, settings: ExpertSettings) -> tuple[str, str]:
    """(class, the clause that decided it)."""
    if settings.new_lesion and course.new_lesions > 0:
        return "PD", "new lesion"
    pseudo = course.within_12_weeks and settings.less_than_3_months == "pseudo_progression"
    if enhancing_progression(course, settings):
        if not pseudo:
            return "PD", "enhancing progression"
    t2_progression = t2_flair_progression(course, settings)
    if t2_progression and not pseudo:
        return "PD", "T2/FLAIR progression"
    if course.enhancing_mm3 <= settings.cr_max_volume_mm3:
        confirmed = not settings.cr_confirmation or (
            course.next_enhancing_mm3 is not None and course.next_enhancing_mm3 <= settings.cr_max_volume_mm3
        )
        if confirmed and not t2_progression:
            return "CR", "no enhancing tumour, confirmed"
        return "SD", "no enhancing tumour, unconfirmed"
    baseline, decrease = course.baseline_size, settings.threshold("pr_decrease")
    if baseline >= settings.threshold("floor") and course.size <= (1.0 - decrease) * baseline + EDGE:
        return "PR", "partial response"
    return "SD", "stable"


ASSESSED = ["size_current", "size_baseline", "size_nadir", "t2_current", "t2_nadir", "enhancing_mm3",
            "new_lesions", "change", "clause", "predicted"]


class PatientCourses:
    """Every patient's studies in order with their measures, to build each follow-up's Course."""

    def __init__(self, studies: pd.DataFrame, measures: pd.DataFrame, lesions: LesionPoints,
                 settings: ExpertSettings) -> None:
        self.settings = settings
        self.lesions = lesions
        # the measures table is read as text: a study without a segmentation has '' (not NaN) in every column
        numeric = measures.set_index(["patient", "study"]).drop(columns=["segmentation"], errors="ignore")
        numeric = numeric.apply(pd.to_numeric, errors="coerce")
        self.measures = {key: row for key, row in numeric.iterrows() if pd.notna(row["enhancing_mm3"])}
        ordered = studies.assign(order=pd.to_numeric(studies["order"])).sort_values(["patient", "order"])
        self.order = {p: list(g["study"]) for p, g in ordered.groupby("patient", sort=False)}
        self.rating = dict(zip(zip(ordered["patient"], ordered["study"]), ordered["rating"].fillna("")))

    def size(self, key: tuple[str, str]) -> float:
        row = self.measures[key]
        return float(row["product_mm2"] if self.settings.method == "bidimensional" else row["enhancing_mm3"])

    def course_studies(self, patient: str, current: str, baseline: str) -> list[str]:
        """Measured studies from the baseline (reset) or the first baseline (keep) up to before `current`."""
        chain = self.order[patient]
        end = chain.index(current)
        start = chain.index(baseline)
        if self.settings.re_resection == "keep":
            firsts = [i for i, s in enumerate(chain[:end]) if self.rating[(patient, s)] in BASELINE_RATINGS]
            start = min([start, *firsts[:1]])
        later_surgery = {i for i in range(start + 1, end) if self.rating[(patient, chain[i])] in BASELINE_RATINGS}
        keep_out = later_surgery if self.settings.re_resection == "keep" else set()
        return [chain[i] for i in range(start, end) if i not in keep_out and (patient, chain[i]) in self.measures]

    def missing_reason(self, pair) -> str:
        baseline = getattr(pair, "baseline", "") or ""
        if not baseline or baseline not in self.order.get(pair.patient, []):
            return "no baseline study"
        for role in ("current", "previous"):
            if (pair.patient, getattr(pair, role)) not in self.measures:
                return f"{role} study {getattr(pair, role)} has no segmentation"
        if not self.course_studies(pair.patient, pair.current, baseline):
            return f"no study with a segmentation from baseline {baseline} on"
        return ""

    def course(self, pair) -> Course:
        patient, current = pair.patient, pair.current
        studies = self.course_studies(patient, current, pair.baseline)
        baseline = studies[0]  # the baseline, or the first measured study after it
        sizes = [self.size((patient, s)) for s in studies]
        t2 = [float(self.measures[(patient, s)]["edema_mm3"]) for s in studies]
        chain = self.order[patient]
        after = [s for s in chain[chain.index(current) + 1:] if (patient, s) in self.measures]
        row = self.measures[(patient, current)]
        margin = self.settings.new_lesion_margin_mm
        return Course(
            size=self.size((patient, current)),
            baseline_size=self.size((patient, baseline)),
            nadir_size=min(sizes),
            t2=float(row["edema_mm3"]),
            t2_nadir=min(t2),
            enhancing_mm3=float(row["enhancing_mm3"]),
            next_enhancing_mm3=float(self.measures[(patient, after[0])]["enhancing_mm3"]) if after else None,
            new_lesions=self.lesions.new_lesions(patient, pair.previous, current, margin) if self.settings.new_lesion else 0,
            within_12_weeks=str(getattr(pair, "less_than_3_months", "0")) == "1",
        )


def assess(course: Course, settings: ExpertSettings) -> dict:
    predicted, clause = rate(course, settings)
    change = (course.size - course.nadir_size) / course.nadir_size if course.nadir_size > 0 else np.nan
    return {"size_current": course.size, "size_baseline": course.baseline_size, "size_nadir": course.nadir_size,
            "t2_current": course.t2, "t2_nadir": course.t2_nadir, "enhancing_mm3": course.enhancing_mm3,
            "new_lesions": course.new_lesions, "change": change, "clause": clause, "predicted": predicted}
