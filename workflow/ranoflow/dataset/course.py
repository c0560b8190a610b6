"""Disease course of a synthetic patient: rating sequence, tumour volumes consistent with it, head poses.

The rating of each follow-up is drawn first (from the ratings feasible for the current tumour), then the
tumour is changed by a clear amount on the right side of the RANO 2.0 volumetric thresholds on the
enhancing volume: CR = enhancing tumour gone; PR = 75-88 % decrease (threshold 65 %); PD = 100-200 %
increase (threshold 40 %) or a new lesion; SD = within 10 %. Studies whose CSV rating is unusable
(`None`, empty, no row) change like SD; `Post-Op/PD` changes like PD.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace

import numpy as np
from scipy.spatial.transform import Rotation

from ranoflow import lumiere
from ranoflow.dataset.phantom import CSF_RHO, HEAD_AXES, Head, Lesion, Pose, Tumour
from ranoflow.vocabulary import MODALITIES

# Change factors of the enhancing volume, each far from the RANO thresholds (0.35 and 1.40).
PR_FACTOR, SD_FACTOR, PD_FACTOR = (0.12, 0.25), (0.90, 1.10), (2.0, 3.0)
PD_GROWTH_WITH_NEW_LESION = (1.45, 1.7)
PR_MIN_MM3 = 14e3  # below this a 90 % decrease would leave a residue too small to see at 5 mm
PD_SCALE_MAX_MM3 = 22e3  # above this PD adds a new lesion (and grows the others by PD_GROWTH_...)
PD_MAX_MM3 = 35e3  # above this PD is drawn no more (keeps lesions inside the brain); if forced: new lesion only
WEIGHTS = {"CR": 0.12, "PR": 0.32, "SD": 0.24, "PD": 0.32}
WEIGHTS_AFTER_CR = {"CR": 0.3, "PD": 0.7}
# Shares the whole dataset is steered towards (a class behind its share is drawn more often), so that
# even a small demo has every class in every fold; PD most common, as in LUMIERE.
TARGET_SHARES = {"CR": 0.16, "PR": 0.22, "SD": 0.27, "PD": 0.35}
GAIN = (600.0, 1600.0)

# CSV quirks of the released data; each is given to some patients when `quirks` is on.
QUIRKS = (
    "same_week",  # Pre-Op week-000-1 and Post-Op week-000-2
    "trailing_space",  # "Post-Op "
    "none_rating",  # "None", rationale "Not a timepoint for RANO measurement"
    "empty_rating",  # ""
    "post_op_pd",  # "Post-Op/PD"
    "less_than_3_months",  # LessThan3Months = x on the first follow-up, a few weeks after surgery
    "rationale_3_months",  # rationale mentions "3 months"
    "orphan_rating",  # rating row for a study folder that does not exist
    "unrated_folder",  # study folder with no rating row
    "missing_modality",  # one modality file absent (completeness has no x)
)
# Quirks that replace a follow-up's rating text (one per follow-up).
RATING_QUIRKS = {"none_rating": "None", "empty_rating": "", "post_op_pd": "Post-Op/PD", "unrated_folder": None}


@dataclass(frozen=True)
class StudyPlan:
    """One study: name, truth of the change from the previous study, what the CSVs say, tumour and pose."""

    name: str
    week: int
    change: str  # Pre-Op, Post-Op, CR, PR, SD or PD: the tumour change from the previous study
    rating: str | None  # rating text as written in the CSV; None: no rating row
    rationale: str
    less_than_3_months: bool
    missing: tuple[str, ...]
    tumour: Tumour
    poses: tuple[Pose, ...]  # head pose per modality (MODALITIES order); CT1's is the study's
    gains: tuple[float, ...]  # scanner gain per modality (MODALITIES order)

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(m for m in MODALITIES if m not in self.missing)


@dataclass(frozen=True)
class PoseLimits:
    """Largest head rotation/translation of a study, and of a modality relative to the study's CT1."""

    rotation_deg: float = 10.0
    translation_mm: float = 10.0
    motion_deg: float = 2.0
    motion_mm: float = 2.0


@dataclass(frozen=True)
class PatientPlan:
    """A patient: anatomy, studies in chronological order, rating rows without a folder, demographics."""

    patient: str
    head: Head
    studies: tuple[StudyPlan, ...]
    orphan_ratings: tuple[tuple[str, str, str], ...]  # (study, rating, rationale)
    demographics: dict[str, str]


def quirks_by_patient(n_patients: int, enabled: bool) -> list[set[str]]:
    """Spread every quirk over the patients (about one patient in twelve each, at least one)."""
    assigned: list[set[str]] = [set() for _ in range(n_patients)]
    if not enabled:
        return assigned
    copies = max(1, round(n_patients / 12))
    for j, quirk in enumerate(QUIRKS):
        for t in range(copies):
            assigned[(5 * j + t * (n_patients // copies)) % n_patients].add(quirk)
    return assigned


def random_rotation(rng: np.random.Generator, max_deg: float) -> np.ndarray:
    """A rotation by up to `max_deg` about a random axis."""
    axis = rng.normal(size=3)
    angle = np.deg2rad(rng.uniform(0.0, max_deg))
    return Rotation.from_rotvec(axis / np.linalg.norm(axis) * angle).as_matrix()


def random_translation(rng: np.random.Generator, max_mm: float) -> np.ndarray:
    direction = rng.normal(size=3)
    return direction / np.linalg.norm(direction) * rng.uniform(0.0, max_mm)


def study_poses(rng: np.random.Generator, scale: float, limits: PoseLimits) -> tuple[Pose, ...]:
    """Head pose per modality: a study pose, then a small rigid motion between acquisitions."""
    study = Pose(random_rotation(rng, limits.rotation_deg), random_translation(rng, limits.translation_mm), scale)
    poses = [study]
    for _ in MODALITIES[1:]:
        if limits.motion_deg == 0 and limits.motion_mm == 0:
            poses.append(study)
            continue
        rotation = random_rotation(rng, limits.motion_deg)
        shift = random_translation(rng, limits.motion_mm)
        poses.append(Pose(rotation @ study.rotation, rotation @ study.translation + shift, scale))
    return tuple(poses)


def make_lesion(
    rng: np.random.Generator, centre: np.ndarray, enhancing: float, necrosis: tuple[float, float]
) -> Lesion:
    """An ellipsoidal lesion of random orientation and elongation."""
    axes = np.exp(rng.normal(0.0, 0.15, 3))
    axes /= np.cbrt(np.prod(axes))
    rotation = Rotation.random(random_state=rng).as_matrix()
    return Lesion(
        centre=tuple(float(c) for c in centre),
        rotation=tuple(tuple(float(v) for v in row) for row in rotation),
        axes=tuple(float(a) for a in axes),
        enhancing=float(enhancing),
        necrotic_fraction=float(rng.uniform(*necrosis)),
        edema_factor=float(rng.uniform(1.3, 1.6)),
    )


def scaled(tumour: Tumour, factor: float) -> Tumour:
    """Every lesion's enhancing volume multiplied by `factor` (necrosis and edema follow)."""
    return replace(tumour, lesions=tuple(replace(l, enhancing=l.enhancing * factor) for l in tumour.lesions))


def new_lesion_centre(rng: np.random.Generator, tumour: Tumour) -> np.ndarray:
    """A point deep in the brain, far from the existing lesions and the cavity."""
    brain_axes = HEAD_AXES * CSF_RHO
    best, best_margin = np.zeros(3), -np.inf
    for _ in range(200):
        candidate = rng.uniform(-1.0, 1.0, 3) * brain_axes * 0.6
        if np.linalg.norm(candidate / brain_axes) > 0.6:
            continue
        margins = [np.linalg.norm(candidate - np.asarray(l.centre)) - l.radii()[2] - 25.0 for l in tumour.lesions]
        if tumour.cavity is not None:
            margins.append(np.linalg.norm(candidate - np.asarray(tumour.cavity[0])) - tumour.cavity[1] - 20.0)
        margin = min(margins, default=np.inf)
        if margin > 0:
            return candidate
        if margin > best_margin:
            best, best_margin = candidate, margin
    return best


def feasible_weights(enhancing: float) -> dict[str, float]:
    """Ratings that can follow a tumour with this enhancing volume, with their draw weights."""
    if enhancing <= 0:
        return WEIGHTS_AFTER_CR
    weights = dict(WEIGHTS)
    if enhancing < PR_MIN_MM3:
        del weights["PR"]
    if enhancing > PD_MAX_MM3:
        del weights["PD"]
    return weights


def draw_change(rng: np.random.Generator, enhancing: float, drawn: Counter[str]) -> str:
    """A feasible rating; `drawn` (ratings drawn so far in the dataset) is updated."""
    weights = feasible_weights(enhancing)
    total = sum(drawn.values())
    names = list(weights)
    deficit = np.array([TARGET_SHARES[n] * total - drawn[n] for n in names])
    p = np.array([weights[n] for n in names]) * 2.0 ** np.clip(deficit, -3.0, 3.0)
    change = str(rng.choice(names, p=p / p.sum()))
    drawn[change] += 1
    return change


def apply_change(rng: np.random.Generator, tumour: Tumour, change: str) -> Tumour:
    """The next study's tumour for a RANO change (see the module docstring for the amounts)."""
    if change == "CR":
        return replace(tumour, lesions=())
    if change == "PR":
        return scaled(tumour, rng.uniform(*PR_FACTOR))
    if change == "SD":
        return scaled(tumour, rng.uniform(*SD_FACTOR))
    if change != "PD":
        raise ValueError(f"not a response: {change}")
    if 0 < tumour.enhancing <= PD_SCALE_MAX_MM3:
        return scaled(tumour, rng.uniform(*PD_FACTOR))
    growth = rng.uniform(*PD_GROWTH_WITH_NEW_LESION) if tumour.enhancing <= PD_MAX_MM3 else 1.0
    grown = scaled(tumour, growth)
    lesion = make_lesion(rng, new_lesion_centre(rng, tumour), rng.uniform(6e3, 12e3), (0.1, 0.3))
    return replace(grown, lesions=(*grown.lesions, lesion))


def initial_tumours(rng: np.random.Generator) -> tuple[Tumour, Tumour]:
    """Pre-operative tumour, and the post-operative one (cavity plus, mostly, a residual nodule)."""
    site = np.array([rng.choice([-1.0, 1.0]) * rng.uniform(20, 34), rng.uniform(-30, 30), rng.uniform(-5, 30)])
    preop = Tumour(lesions=(make_lesion(rng, site, rng.uniform(20e3, 45e3), (0.3, 0.6)),))
    radius = 0.85 * preop.lesions[0].radii()[1]
    lesions: tuple[Lesion, ...] = ()
    if rng.uniform() < 0.85:
        inward = -site / np.linalg.norm(site) + rng.normal(0.0, 0.3, 3)
        centre = site + inward / np.linalg.norm(inward) * radius
        lesions = (make_lesion(rng, centre, rng.uniform(12e3, 26e3), (0.1, 0.3)),)
    return preop, Tumour(lesions=lesions, cavity=(tuple(float(c) for c in site), float(radius)))


def rationale(rng: np.random.Generator, change: str, before: Tumour, after: Tumour) -> str:
    """A rationale in the released file's shorthand (L: lesion)."""
    if change == "PD" and len(after.lesions) > len(before.lesions):
        return "new L"
    choices = {
        "CR": ("no enhancing L", "enhancing L disappeared"),
        "PR": ("L decreased", "enhancing L clearly smaller"),
        "SD": ("", "no relevant change"),
        "PD": ("L increased", "T2-Progr. and L increased"),
    }[change]
    return str(rng.choice(choices))


def rating_quirk_slots(n_follow: int, quirks: set[str]) -> dict[int, str]:
    """Follow-up index -> rating quirk; distinct follow-ups, the first one last (it may be < 3 months)."""
    free = [*range(1, n_follow), 0]
    return dict(zip(free, (q for q in RATING_QUIRKS if q in quirks)))


def plan_patient(
    number: int,
    rng: np.random.Generator,
    n_studies: int,
    quirks: set[str],
    limits: PoseLimits,
    drawn: Counter[str],
) -> PatientPlan:
    """Ratings, tumours, weeks, poses and CSV quirks of one patient; `drawn`: see `draw_change`."""
    scale = float(rng.uniform(0.94, 1.06))
    head = Head(
        gyri_phase=tuple(float(p) for p in rng.uniform(0, 2 * np.pi, 3)), ventricles=float(rng.uniform(0.8, 1.3))
    )
    n_follow = n_studies - 2
    rating_quirks = rating_quirk_slots(n_follow, quirks)
    missing_at = int(rng.integers(n_follow)) if "missing_modality" in quirks else -1
    missing = (str(rng.choice(MODALITIES)),)

    def study(
        name: str,
        week: int,
        change: str,
        rating: str | None,
        why: str,
        tumour: Tumour,
        early: bool = False,
        missing: tuple[str, ...] = (),
    ) -> StudyPlan:
        poses = study_poses(rng, scale, limits)
        gains = tuple(float(g) for g in rng.uniform(*GAIN, len(MODALITIES)))
        return StudyPlan(name, week, change, rating, why, early, missing, tumour, poses, gains)

    preop, postop = initial_tumours(rng)
    same_week = "same_week" in quirks
    week = 0 if same_week else int(rng.integers(1, 4))
    names = (lumiere.study_name(0, 1), lumiere.study_name(0, 2)) if same_week else (
        lumiere.study_name(0), lumiere.study_name(week)
    )  # fmt: skip
    studies = [
        study(names[0], 0, "Pre-Op", "Pre-Op", "", preop),
        study(
            names[1], week, "Post-Op", "Post-Op " if "trailing_space" in quirks else "Post-Op",
            "PRET" if postop.lesions else "CRET", postop,
        ),  # fmt: skip
    ]
    tumour = postop
    for i in range(n_follow):
        quirk = rating_quirks.get(i)
        if quirk is None:
            change = draw_change(rng, tumour.enhancing, drawn)
        else:  # unusable ratings keep the tumour stable; Post-Op/PD is a progression
            change = "PD" if quirk == "post_op_pd" else "SD"
        before, tumour = tumour, apply_change(rng, tumour, change)
        early = i == 0 and "less_than_3_months" in quirks
        week += int(rng.integers(4, 10)) if early else int(rng.integers(8, 17))
        why = rationale(rng, change, before, tumour) if quirk is None else ""
        if quirk == "none_rating":
            why = "Not a timepoint for RANO measurement"
        if early:
            why = "within 3 months after end of radiotherapy"
        elif i == 0 and "rationale_3_months" in quirks:
            why = f"{why}; < 3 months after radiotherapy".lstrip("; ")
        rating = change if quirk is None else RATING_QUIRKS[quirk]
        studies.append(
            study(
                lumiere.study_name(week), week, change, rating, why, tumour,
                early=early, missing=missing if i == missing_at else (),
            )  # fmt: skip
        )
    orphans: tuple[tuple[str, str, str], ...] = ()
    if "orphan_rating" in quirks:
        orphans = ((lumiere.study_name(week + int(rng.integers(8, 17))), "SD", "no relevant change"),)
    return PatientPlan(
        patient=lumiere.patient_name(number),
        head=head,
        studies=tuple(studies),
        orphan_ratings=orphans,
        demographics=demographics(rng, week),
    )


def demographics(rng: np.random.Generator, last_week: int) -> dict[str, str]:
    """One demographics row (values as the released file writes them), keyed by its header."""
    idh = str(rng.choice(["WT", "Mutated", "unknown"], p=[0.8, 0.1, 0.1]))
    mgmt = str(rng.choice(["methylated", "not methylated", "na"], p=[0.4, 0.45, 0.15]))
    quantitative = {
        "methylated": f"{rng.uniform(10, 60):.1f}",
        "not methylated": f"{rng.uniform(0, 9):.1f}",
        "na": "na",
    }[mgmt]
    return dict(
        zip(
            lumiere.DEMOGRAPHICS_HEADER[1:],
            [
                str(last_week + int(rng.integers(4, 80))),
                str(rng.choice(["male", "female"])),
                str(int(rng.integers(35, 81))),
                idh,
                "" if idh == "unknown" else str(rng.choice(["NGS", "IHC"])),
                mgmt,
                quantitative,
            ],
        )
    )
