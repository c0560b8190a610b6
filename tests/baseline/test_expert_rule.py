"""rano_expert: each RANO 2010 clause on small hand-made courses of measures (no images needed).

A course is one patient's studies with (product mm², edema mm³, enhancing mm³); the rule reads them as
study_measures.tsv rows. Lesion points place each study's enhancing tumour, for the new-lesion clause."""

import numpy as np
import pandas as pd

from ranoflow.baseline import scoring
from ranoflow.baseline.expert_rule import Course, ExpertSettings, rate
from ranoflow.baseline.study_measures import MEASURE_COLUMNS, LesionPoints

NEAR = np.array([[0.0, 0.0, 0.0]], dtype=np.float32)
FAR = np.array([[80.0, 0.0, 0.0]], dtype=np.float32)


def course_tables(course: list[dict], ratings: list[str] | None = None, flagged=()):
    """studies, measures, lesion points and pairs of one patient; each study: product, edema, enhancing,
    optional points (default: one lesion at the origin, none when no enhancing tumour)."""
    names = [f"week-{10 * k:03d}" for k in range(len(course))]
    ratings = ratings or ["Post-Op", *["SD"] * (len(course) - 1)]
    studies = pd.DataFrame({"patient": "P", "study": names, "order": range(len(names)), "rating": ratings})
    measures, arrays = [], {}
    for name, entry in zip(names, course):
        measures.append({"patient": "P", "study": name, "segmentation": f"{name}.nii.gz",
                         "enhancing_mm3": entry.get("enhancing", entry["product"] * 10.0),
                         "necrosis_mm3": 0.0, "edema_mm3": entry["edema"], "enhancing_components": 1,
                         "measurable_lesions": 1, "largest_diameter_mm": 0.0, "perpendicular_mm": 0.0,
                         "product_mm2": entry["product"]})
        points = entry.get("points", NEAR if measures[-1]["enhancing_mm3"] > 0 else NEAR[:0])
        arrays[f"P/{name}/points"] = points
        arrays[f"P/{name}/components"] = np.arange(1, len(points) + 1, dtype=np.int32)
    baselines = [i for i, r in enumerate(ratings) if r == "Post-Op"]
    pairs = []
    for k in range(1, len(names)):
        if ratings[k] == "Post-Op":
            continue
        baseline = max(i for i in baselines if i < k)
        pairs.append({"id": f"P_{names[k]}", "patient": "P", "current": names[k], "previous": names[k - 1],
                      "label": "SD", "baseline": names[baseline], "less_than_3_months": int(names[k] in flagged)})
    return studies, pd.DataFrame(measures, columns=MEASURE_COLUMNS), LesionPoints(arrays), pd.DataFrame(pairs)


def ratings(course, study_ratings=None, flagged=(), **settings) -> list[str]:
    studies, measures, lesions, pairs = course_tables(course, study_ratings, flagged)
    assessed, missing = scoring.predict_expert(pairs, studies, measures, lesions, ExpertSettings(**settings))
    assert missing.empty
    return list(assessed["predicted"])


def test_pd_on_enhancing_progression_of_25_percent_bidimensional():
    """RANO 2010: >= 25 % increase in the sum of perpendicular-diameter products against the nadir is PD."""
    course = [{"product": 400, "edema": 10000}, {"product": 300, "edema": 10000}, {"product": 380, "edema": 10000}]
    assert ratings(course) == ["SD", "PD"]  # +27 % against the nadir of 300, though -5 % against the baseline


def test_volumetric_thresholds_pr_65_pd_40():
    """Volumetric RANO: PR at >= 65 % decrease against baseline, PD at >= 40 % increase against the nadir."""
    course = [{"product": 0, "enhancing": 10000, "edema": 10000}, {"product": 0, "enhancing": 3400, "edema": 10000},
              {"product": 0, "enhancing": 4700, "edema": 10000}, {"product": 0, "enhancing": 4800, "edema": 10000}]
    assert ratings(course, method="volumetric") == ["PR", "SD", "PD"]  # 4700 = +38 %, 4800 = +41 % of 3400


def test_pr_needs_50_percent_decrease_from_a_measurable_baseline():
    """RANO 2010: PR is >= 50 % decrease of the product sum against the baseline; a non-measurable baseline has none."""
    assert ratings([{"product": 400, "edema": 9000}, {"product": 190, "edema": 9000}]) == ["PR"]
    assert ratings([{"product": 400, "edema": 9000}, {"product": 210, "edema": 9000}]) == ["SD"]
    assert ratings([{"product": 80, "edema": 9000}, {"product": 30, "edema": 9000}]) == ["SD"]


def test_t2_flair_progression_against_its_nadir_is_pd():
    """RANO 2010: significant increase of the non-enhancing T2/FLAIR lesion is PD, even with stable enhancement."""
    course = [{"product": 400, "edema": 20000}, {"product": 400, "edema": 15000}, {"product": 400, "edema": 22000}]
    assert ratings(course) == ["SD", "PD"]  # +47 % and +7 cm³ against the edema nadir
    assert ratings(course, t2_flair_progression=False) == ["SD", "SD"]
    assert ratings(course, t2_flair_min_increase_mm3=8000.0) == ["SD", "SD"]  # the absolute minimum


def test_new_lesion_away_from_previous_lesions_is_pd():
    """RANO 2010: any new enhancing lesion is PD, whatever the size change."""
    course = [{"product": 400, "edema": 9000}, {"product": 300, "edema": 9000, "points": np.vstack([NEAR, FAR])}]
    assert ratings(course) == ["PD"]
    assert ratings(course, new_lesion=False) == ["SD"]
    near = [{"product": 400, "edema": 9000}, {"product": 300, "edema": 9000, "points": NEAR + 5.0}]
    assert ratings(near) == ["SD"]  # 8.7 mm from the previous lesion: not new at a 10 mm margin


def test_cr_only_when_confirmed_by_the_next_study():
    """RANO 2010: CR needs disappearance of all enhancing disease confirmed at the next scan; unconfirmed is SD."""
    gone = {"product": 0, "enhancing": 0.0, "edema": 9000}
    course = [{"product": 400, "edema": 9000}, dict(gone), dict(gone)]
    assert ratings(course) == ["CR", "SD"]  # the last has no next study to confirm it
    assert ratings(course, cr_confirmation=False) == ["CR", "CR"]
    regrowth = [{"product": 400, "edema": 9000}, dict(gone), {"product": 50, "enhancing": 400.0, "edema": 9000}]
    assert ratings(regrowth)[0] == "SD"


def test_cr_is_not_given_with_t2_flair_progression():
    """RANO 2010: CR requires stable or improved non-enhancing T2/FLAIR lesions."""
    course = Course(size=0.0, baseline_size=400.0, nadir_size=400.0, t2=30000.0, t2_nadir=10000.0,
                    enhancing_mm3=0.0, next_enhancing_mm3=0.0, within_12_weeks=True)
    # within 12 weeks T2 growth is not PD (pseudo-progression), but it still rules out CR
    assert rate(course, ExpertSettings()) == ("SD", "no enhancing tumour, unconfirmed")


def test_growth_from_a_non_measurable_nadir_needs_measurable_disease_and_a_minimum():
    """RANO 2010: a non-measurable lesion progresses only when it becomes measurable, with an absolute minimum."""
    small = [{"product": 80, "edema": 9000}, {"product": 0, "enhancing": 200.0, "edema": 9000},
             {"product": 90, "enhancing": 900.0, "edema": 9000}]
    assert ratings(small) == ["SD", "SD"]  # 90 mm² is below the 10 x 10 mm floor
    grown = [*small[:2], {"product": 160, "enhancing": 1600.0, "edema": 9000}]
    assert ratings(grown) == ["SD", "PD"]
    assert ratings(grown, pd_min_increase=200.0) == ["SD", "SD"]


def test_re_resection_keeps_or_resets_the_nadir():
    """RANO: after surgery the post-operative scan is a new baseline (reset); the raters kept the earlier nadir."""
    course = [{"product": 300, "edema": 9000}, {"product": 300, "edema": 9000}, {"product": 900, "edema": 9000},
              {"product": 500, "edema": 9000}, {"product": 520, "edema": 9000}]
    study_ratings = ["Post-Op", "SD", "PD", "Post-Op", "SD"]
    assert ratings(course, study_ratings, re_resection="keep")[-1] == "PD"  # 520 vs the pre-surgery nadir 300
    assert ratings(course, study_ratings, re_resection="reset")[-1] == "SD"  # 520 vs the new baseline 500


def test_growth_within_12_weeks_is_pseudo_progression_but_a_new_lesion_is_not():
    """RANO 2010: within 12 weeks of radiotherapy growth alone is not PD; a new lesion outside the field is."""
    course = [{"product": 300, "edema": 9000}, {"product": 600, "edema": 9000}]
    assert ratings(course, flagged=("week-010",)) == ["SD"]
    assert ratings(course, flagged=("week-010",), less_than_3_months="as_any") == ["PD"]
    new = [{"product": 300, "edema": 9000}, {"product": 600, "edema": 9000, "points": np.vstack([NEAR, FAR])}]
    assert ratings(new, flagged=("week-010",)) == ["PD"]


def test_a_baseline_without_segmentation_falls_back_to_the_first_measured_study():
    """RANO rates against the post-treatment baseline; without its segmentation the next measured study stands in."""
    course = [{"product": 900, "edema": 9000}, {"product": 400, "edema": 9000}, {"product": 190, "edema": 9000}]
    studies, measures, lesions, pairs = course_tables(course)
    measures.loc[0, "enhancing_mm3"] = np.nan  # week-000 has no segmentation
    assessed, missing = scoring.predict_expert(pairs, studies, measures, lesions, ExpertSettings())
    assert list(missing["current"]) == ["week-010"]  # its previous study has no segmentation
    assert list(assessed["predicted"]) == ["PR"]  # 190 against 400, not against the unmeasured 900


def test_a_study_without_segmentation_is_skipped_as_the_next_study_of_a_course():
    """A study whose segmentation is missing has '' in every column of study_measures.tsv (it is read as
    text): it is no confirming study, and the course still rates (the demo's first run failed here)."""
    course = [{"product": 400, "edema": 10000}, {"product": 0, "enhancing": 0.0, "edema": 10000},
              {"product": 0, "enhancing": 0.0, "edema": 10000}]
    studies, measures, lesions, pairs = course_tables(course)
    measures = measures.astype(str)
    measures.loc[2, [c for c in measures.columns if c not in ("patient", "study")]] = ""
    assessed, missing = scoring.predict_expert(pairs, studies, measures, lesions, ExpertSettings())
    assert list(assessed["predicted"]) == ["SD"]  # no next measured study confirms the CR
    assert list(missing["id"]) == ["P_week-020"]
