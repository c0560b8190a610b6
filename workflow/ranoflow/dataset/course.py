"""Disease course of a synthetic patient: an enhancing-volume history, rated the way RANO 2.0 rates it.

Each patient is operated on (Pre-Op, Post-Op study: the baseline, with or without a residual tumour), then
followed up every 8-16 weeks. Each follow-up's tumour comes from one step of the course - response, partial
shrinkage, stable phase, slow or fast growth, a new lesion, disappearance, regrowth after disappearance - and
its rating is derived from the history by `ranoflow.rano`: PR/CR against the baseline, PD against the nadir
(the smallest tumour since baseline), with the volumetric thresholds and the minimum measurable size. So a
maintained response is PR at every visit, two slow growth steps make a PD at the second, and growth from a
nadir below the previous scan's size is PD although the previous scan alone says SD. Some patients have a
first follow-up within 12 weeks after radiotherapy (flagged LessThan3Months) showing pseudo-progression:
enhancement grows, which RANO does not call PD there.

The step of each follow-up is chosen among candidate steps by the rating it gives (steering the dataset's
class shares) and never puts a volume ratio near a threshold (PR, PD, the nadir comparison, the measurable
size), so the rendered segmentations give the same ratings and the same nadir. Studies whose CSV rating is
unusable (`None`, empty, no row) keep the tumour unchanged; `Post-Op/PD` (a re-operation after progression)
grows like PD and becomes the new baseline.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, replace

import numpy as np
from scipy.spatial.transform import Rotation

from ranoflow import lumiere
from ranoflow.dataset.phantom import CSF_RHO, HEAD_AXES, Head, Lesion, Pose, Tumour
from ranoflow.rano import MIN_MEASURABLE_MM3, VOLUMETRIC, rano_response
from ranoflow.vocabulary import CLASSES, MODALITIES

MIN_LESION_MM3 = 400.0  # smallest lesion (a smaller one would hardly show at the demo's voxel sizes)
MIN_TUMOUR_MM3 = 1.5 * MIN_MEASURABLE_MM3  # a tumour, when present, is clearly measurable
MAX_TUMOUR_MM3 = 35e3  # keeps the lesions inside the brain
MAX_LESIONS = 3
# Bands no planned ratio falls into (rendered segmentations measure volumes within a few per cent).
PR_BAND = (0.29, 0.42)  # current / baseline, around 1 - 0.65
PD_BAND = (1.27, 1.55)  # current / nadir, around 1 + 0.40
NADIR_BAND = (0.88, 1.12)  # current / nadir: a study is clearly smaller than the nadir, or not
# Steps of the course: draw weight and factor range of the enhancing volume (None: see `step`).
STEPS: dict[str, tuple[float, tuple[float, float] | None]] = {
    "respond": (1.0, (0.10, 0.28)),
    "shrink": (1.0, (0.50, 0.85)),
    "stable": (2.0, (0.85, 1.15)),
    "slow_growth": (2.0, (1.12, 1.30)),
    "fast_growth": (1.0, (1.60, 2.60)),
    "new_lesion": (0.6, None),
    "vanish": (0.5, None),
}
STEPS_WITHOUT_TUMOUR: dict[str, float] = {"stay": 2.0, "regrow": 1.0, "new_lesion": 0.6}
CANDIDATES = 24  # candidate steps drawn per follow-up
PSEUDO_PROGRESSION = (1.7, 2.4)  # enhancement growth within 12 weeks after radiotherapy
PSEUDO_PROGRESSION_SHARE = 0.15  # patients with an early first follow-up, besides the quirk's
NEW_LESION_MM3 = (5e3, 10e3)
REGROWTH_MM3 = (2e3, 5e3)
# Shares the whole dataset is steered towards (a class behind its share is drawn more often): PD the
# largest class, as in LUMIERE, and every class frequent enough for each fold of a small demo.
TARGET_SHARES = {"CR": 0.14, "PR": 0.20, "SD": 0.26, "PD": 0.40}
GAIN = (600.0, 1600.0)

# CSV quirks of the released data; each is given to some patients when `quirks` is on.
QUIRKS = (
    "same_week",  # Pre-Op week-000-1 and Post-Op week-000-2
    "trailing_space",  # "Post-Op "
    "none_rating",  # "None", rationale "Not a timepoint for RANO measurement"
    "empty_rating",  # ""
    "post_op_pd",  # "Post-Op/PD"
    "less_than_3_months",  # LessThan3Months = x on the first follow-up, a few weeks after surgery
    "rationale_3_months",  # rationale mentions "less than 3 months"
    "orphan_rating",  # rating row for a study folder that does not exist
    "unrated_folder",  # study folder with no rating row
    "missing_modality",  # one modality file absent (completeness has no x)
)
# Quirks that replace a follow-up's rating text (one per follow-up).
RATING_QUIRKS = {"none_rating": "None", "empty_rating": "", "post_op_pd": "Post-Op/PD", "unrated_folder": None}
NOT_A_TIMEPOINT = "Not a timepoint for RANO measurement"
EARLY_RATIONALE = "within 3 months after end of radiotherapy"


@dataclass(frozen=True)
class StudyPlan:
    """One study: name, RANO truth, what the CSVs say, tumour and pose."""

    name: str
    week: int
    change: str  # Pre-Op, Post-Op or the RANO rating the history gives (CR, PR, SD, PD)
    rating: str | None  # rating text as written in the CSV; None: no rating row
    rationale: str
    less_than_3_months: bool
    missing: tuple[str, ...]
    tumour: Tumour
    poses: tuple[Pose, ...]  # head pose per modality (MODALITIES order); CT1's is the study's
    gains: tuple[float, ...]  # scanner gain per modality (MODALITIES order)
    baseline: str = ""  # follow-ups: the baseline study the rating compares responses with
    nadir: str = ""  # follow-ups: the smallest-tumour study since baseline, which progression is judged against
    new_lesion: bool = False
    pseudo_progression: bool = False

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


@dataclass(frozen=True)
class History:
    """Baseline and nadir (study, enhancing volume) of the follow-ups to come."""

    baseline: str
    baseline_mm3: float
    nadir: str
    nadir_mm3: float

    @classmethod
    def start(cls, study: str, volume: float) -> History:
        return cls(study, volume, study, volume)

    def after(self, study: str, volume: float) -> History:
        """The history once `study` is measured; on a tie the later study is the nadir."""
        if volume <= self.nadir_mm3:
            return replace(self, nadir=study, nadir_mm3=volume)
        return self


def step(rng: np.random.Generator, tumour: Tumour, kind: str) -> Tumour | None:
    """The next study's tumour after one step of the course; None when the step cannot apply."""
    if kind == "stay":
        return tumour
    if kind == "vanish":
        return replace(tumour, lesions=())
    if kind == "new_lesion":
        if len(tumour.lesions) >= MAX_LESIONS:
            return None
        lesion = make_lesion(rng, new_lesion_centre(rng, tumour), rng.uniform(*NEW_LESION_MM3), (0.1, 0.3))
        return replace(tumour, lesions=(*tumour.lesions, lesion))
    if kind == "regrow":  # a nodule at the resection cavity's margin, or deep in the brain without one
        centre = cavity_margin(rng, tumour) if tumour.cavity is not None else new_lesion_centre(rng, tumour)
        return replace(tumour, lesions=(make_lesion(rng, centre, rng.uniform(*REGROWTH_MM3), (0.1, 0.3)),))
    factors = STEPS[kind][1]
    assert factors is not None
    return scaled(tumour, rng.uniform(*factors))


def cavity_margin(rng: np.random.Generator, tumour: Tumour) -> np.ndarray:
    """A point on the resection cavity's wall, towards the brain's centre."""
    assert tumour.cavity is not None
    centre, radius = np.asarray(tumour.cavity[0]), tumour.cavity[1]
    inward = -centre / np.linalg.norm(centre) + rng.normal(0.0, 0.3, 3)
    return centre + inward / np.linalg.norm(inward) * radius


def plausible(tumour: Tumour, history: History) -> bool:
    """Inside the size limits, and no volume ratio near a RANO threshold or the nadir."""
    volume = tumour.enhancing
    if volume == 0:
        return True
    if volume < MIN_TUMOUR_MM3 or volume > MAX_TUMOUR_MM3:
        return False
    if min(lesion.enhancing for lesion in tumour.lesions) < MIN_LESION_MM3:
        return False
    if history.baseline_mm3 > 0 and PR_BAND[0] < volume / history.baseline_mm3 < PR_BAND[1]:
        return False
    if history.nadir_mm3 > 0:
        ratio = volume / history.nadir_mm3
        return not (PD_BAND[0] < ratio < PD_BAND[1] or NADIR_BAND[0] < ratio < NADIR_BAND[1])
    return True


def rate(before: Tumour, after: Tumour, history: History, early: bool) -> tuple[str, bool]:
    """(RANO rating, new lesion) of a follow-up whose tumour went from `before` to `after`."""
    new_lesion = len(after.lesions) > len(before.lesions)
    rating = rano_response(
        after.enhancing, history.baseline_mm3, history.nadir_mm3, VOLUMETRIC,
        new_lesion=new_lesion, within_12_weeks=early,
    )  # fmt: skip
    return rating, new_lesion


def step_kinds(tumour: Tumour, early: bool) -> dict[str, float]:
    """Steps that can follow this tumour, with their draw weights; within 12 weeks after radiotherapy no
    lesion appears (enhancement there is treatment-related)."""
    kinds = STEPS_WITHOUT_TUMOUR if not tumour.lesions else {kind: weight for kind, (weight, _) in STEPS.items()}
    return {kind: weight for kind, weight in kinds.items() if not (early and kind in ("new_lesion", "regrow"))}


def steered_step(
    rng: np.random.Generator, tumour: Tumour, history: History, early: bool, drawn: Counter[str]
) -> Tumour:
    """A plausible next tumour whose rating keeps the dataset near TARGET_SHARES; `drawn` is updated."""
    kinds = step_kinds(tumour, early)
    names, weights = list(kinds), np.array(list(kinds.values()))
    options: dict[str, list[Tumour]] = defaultdict(list)
    for _ in range(CANDIDATES):
        after = step(rng, tumour, str(rng.choice(names, p=weights / weights.sum())))
        if after is not None and plausible(after, history):
            options[rate(tumour, after, history, early)[0]].append(after)
    if not options:  # an unchanged tumour is always measured the same, so it is never ambiguous
        options[rate(tumour, tumour, history, early)[0]].append(tumour)
    ratings = sorted(options, key=CLASSES.index)
    total = sum(drawn.values())
    deficit = np.array([TARGET_SHARES[r] * total - drawn[r] for r in ratings])
    p = np.array([TARGET_SHARES[r] for r in ratings]) * 2.0 ** np.clip(deficit, -3.0, 3.0)
    rating = str(rng.choice(ratings, p=p / p.sum()))
    drawn[rating] += 1
    candidates = options[rating]
    return candidates[int(rng.integers(len(candidates)))]


def pseudo_progression(rng: np.random.Generator, tumour: Tumour, history: History) -> Tumour:
    """Treatment-related growth of the enhancing residual (capped at the size limit)."""
    for _ in range(CANDIDATES):
        after = scaled(tumour, rng.uniform(*PSEUDO_PROGRESSION))
        if plausible(after, history):
            return after
    return tumour


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


def rationale(rng: np.random.Generator, change: str, new_lesion: bool) -> str:
    """A rationale in the released file's shorthand (L: lesion)."""
    if change == "PD" and new_lesion:
        return "new L"
    choices = {
        "CR": ("no enhancing L", "enhancing L disappeared"),
        "PR": ("L decreased", "enhancing L clearly smaller than at baseline"),
        "SD": ("", "no relevant change"),
        "PD": ("L increased", "T2-Progr. and L increased"),
    }[change]
    return str(rng.choice(choices))


def rating_quirk_slots(n_follow: int, quirks: set[str]) -> dict[int, str]:
    """Follow-up index -> rating quirk; distinct follow-ups, the first one last (it may be < 3 months)."""
    free = [*range(1, n_follow), 0]
    return dict(zip(free, (q for q in RATING_QUIRKS if q in quirks)))


def referenced(studies: list[StudyPlan]) -> set[str]:
    """Studies some follow-up takes as its baseline or nadir."""
    return {name for s in studies for name in (s.baseline, s.nadir) if name}


def plan_patient(
    number: int,
    rng: np.random.Generator,
    n_studies: int,
    quirks: set[str],
    limits: PoseLimits,
    drawn: Counter[str],
) -> PatientPlan:
    """Course, ratings, weeks, poses and CSV quirks of one patient; `drawn`: see `steered_step`."""
    scale = float(rng.uniform(0.94, 1.06))
    head = Head(
        gyri_phase=tuple(float(p) for p in rng.uniform(0, 2 * np.pi, 3)), ventricles=float(rng.uniform(0.8, 1.3))
    )
    n_follow = n_studies - 2
    rating_quirks = rating_quirk_slots(n_follow, quirks)

    def study(name: str, week: int, change: str, rating: str | None, why: str, tumour: Tumour, **truth) -> StudyPlan:
        poses = study_poses(rng, scale, limits)
        gains = tuple(float(g) for g in rng.uniform(*GAIN, len(MODALITIES)))
        early = truth.pop("early", False)
        return StudyPlan(name, week, change, rating, why, early, (), tumour, poses, gains, **truth)

    preop, postop = initial_tumours(rng)
    early_patient = "less_than_3_months" in quirks or rng.uniform() < PSEUDO_PROGRESSION_SHARE
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
    tumour, history = postop, History.start(names[1], postop.enhancing)
    for i in range(n_follow):
        quirk = rating_quirks.get(i)
        early = i == 0 and early_patient
        week += int(rng.integers(4, 10)) if early else int(rng.integers(8, 17))
        name = lumiere.study_name(week)
        before = tumour
        if quirk in ("none_rating", "empty_rating", "unrated_folder"):
            tumour = before  # not a RANO timepoint: nothing changes
        elif quirk == "post_op_pd":  # progression, re-operated: the study is the new baseline
            tumour = pseudo_progression(rng, before, history) if before.lesions else step(rng, before, "regrow")
        elif early and before.lesions:
            tumour = pseudo_progression(rng, before, history)
        else:
            tumour = steered_step(rng, before, history, early, drawn)
        change, new_lesion = rate(before, tumour, history, early)
        why = rationale(rng, change, new_lesion)
        if quirk is not None:
            why = NOT_A_TIMEPOINT if quirk == "none_rating" else ""
        if early:
            why = EARLY_RATIONALE
        elif i == 0 and "rationale_3_months" in quirks:
            why = f"{why}; less than 3 months after radiotherapy".lstrip("; ")
        rating = change if quirk is None else RATING_QUIRKS[quirk]
        studies.append(
            study(
                name, week, change, rating, why, tumour, early=early, baseline=history.baseline,
                nadir=history.nadir, new_lesion=new_lesion, pseudo_progression=early and bool(before.lesions),
            )  # fmt: skip
        )
        history = History.start(name, tumour.enhancing) if quirk == "post_op_pd" else history.after(name, tumour.enhancing)
    if "missing_modality" in quirks:  # on a follow-up no later rating depends on (it has no segmentation)
        free = [k for k in range(2, len(studies)) if studies[k].name not in referenced(studies)]
        if free:
            k = free[int(rng.integers(len(free)))]
            studies[k] = replace(studies[k], missing=(str(rng.choice(MODALITIES)),))
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


def reference_effects(plans: list[PatientPlan]) -> Counter[str]:
    """How often the previous scan alone would rate a rated follow-up differently from RANO's history."""
    effects: Counter[str] = Counter()
    for plan in plans:
        for before, study in zip(plan.studies[1:], plan.studies[2:]):
            if study.change not in CLASSES:
                continue
            previous = before.tumour.enhancing
            alone = rano_response(study.tumour.enhancing, previous, previous, VOLUMETRIC, new_lesion=study.new_lesion)
            if alone != study.change:
                effects[f"{study.change} by history, {alone} against the previous scan"] += 1
    return effects


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
