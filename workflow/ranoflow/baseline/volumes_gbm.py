"""`volumes_gbm`: gradient boosting (scikit-learn HistGradientBoostingClassifier) on per-pair segmentation features.

Features of a pair, all from study_measures.tsv / study_lesions.npz (measured once per study): the current
study's enhancing, necrosis and edema volumes, bidimensional product, largest diameter and component counts;
log-ratios and differences of those against the previous study, the baseline and the nadir; new lesions
against the previous study; the interval and LessThan3Months; rano_expert's answer (one-hot, optional) and
the clinical fields (optional). Missing references are NaN, which the model handles itself.

Per fold: fitted on the fold's training pairs for every entry of the parameter grid, the entry with the best
balanced accuracy on the validation pairs is refitted on training + validation pairs and predicts the test
pairs. Class imbalance (PD is two thirds of LUMIERE's ratings): class_weight='balanced'.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import balanced_accuracy_score
from threadpoolctl import threadpool_limits

from ranoflow.baseline.expert_rule import ExpertSettings, PatientCourses, assess
from ranoflow.baseline.study_measures import LesionPoints
from ranoflow.vocabulary import CATEGORIES, CLASSES

QUANTITIES = ["enhancing_mm3", "necrosis_mm3", "edema_mm3", "product_mm2", "largest_diameter_mm",
              "enhancing_components", "measurable_lesions"]
RATIO_QUANTITIES = ["enhancing_mm3", "necrosis_mm3", "edema_mm3", "product_mm2", "largest_diameter_mm"]
ROLES = ("previous", "baseline", "nadir")
# Few, shallow trees: a few hundred training pairs; sklearn's per-tree overhead dominates the stage's time.
DEFAULT_GRID = (
    {"learning_rate": 0.1, "max_leaf_nodes": 7, "max_iter": 60, "min_samples_leaf": 10},
    {"learning_rate": 0.05, "max_leaf_nodes": 5, "max_iter": 100, "min_samples_leaf": 20},
)


@dataclass(frozen=True)
class GbmSettings:
    """The `baseline.volumes_gbm` config section."""

    grid: tuple[dict, ...] = DEFAULT_GRID
    rule_features: bool = True
    clinical: tuple[str, ...] = ()
    seed: int = 0

    @classmethod
    def from_config(cls, section: dict) -> GbmSettings:
        return cls(
            grid=tuple(section.get("grid") or DEFAULT_GRID),
            rule_features=bool(section.get("rule_features", True)),
            clinical=tuple(section.get("clinical") or ()),
            seed=int(section.get("seed", 0)),
        )


def _numeric(measures: pd.DataFrame) -> dict[tuple[str, str], dict[str, float]]:
    frame = measures.copy()
    for column in QUANTITIES:
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    frame = frame[frame["enhancing_mm3"].notna()]
    return {(p, s): row for p, s, row in zip(frame["patient"], frame["study"], frame[QUANTITIES].to_dict("records"))}


def _clinical(pair, fields: tuple[str, ...]) -> dict[str, float]:
    values = {}
    for name in fields:
        value = str(getattr(pair, name, "") or "").strip().lower()
        if name in CATEGORIES:
            for category in CATEGORIES[name]:
                values[f"{name}_{category}"] = float(value == category) if value else np.nan
        else:
            values[name] = pd.to_numeric(value, errors="coerce")
    return values


def pair_features(
    pairs: pd.DataFrame,
    studies: pd.DataFrame,
    measures: pd.DataFrame,
    lesions: LesionPoints,
    expert: ExpertSettings,
    settings: GbmSettings,
) -> pd.DataFrame:
    """One row of features per pair (index: pair id); pairs whose current study has no measures are left out."""
    measured = _numeric(measures)
    courses = PatientCourses(studies, measures, lesions, expert)
    rows = {}
    for pair in pairs.itertuples(index=False):
        current = measured.get((pair.patient, pair.current))
        if current is None:
            continue
        row = {f"current_{q}": current[q] for q in QUANTITIES}
        for role in ROLES:
            reference = measured.get((pair.patient, str(getattr(pair, role, "") or "")))
            for q in RATIO_QUANTITIES:
                value = np.nan if reference is None else reference[q]
                row[f"{role}_{q}"] = value
                row[f"log_ratio_{q}_{role}"] = np.log1p(current[q]) - np.log1p(value)
                row[f"difference_{q}_{role}"] = current[q] - value
        previous_measured = (pair.patient, pair.previous) in measured
        row["new_lesions"] = (
            lesions.new_lesions(pair.patient, pair.previous, pair.current, expert.new_lesion_margin_mm)
            if previous_measured else np.nan
        )
        row["weeks_between"] = pd.to_numeric(getattr(pair, "weeks_between", np.nan), errors="coerce")
        row["less_than_3_months"] = pd.to_numeric(getattr(pair, "less_than_3_months", 0), errors="coerce")
        if settings.rule_features:
            answer = assess(courses.course(pair), expert)["predicted"] if not courses.missing_reason(pair) else ""
            for name in CLASSES:
                row[f"rule_{name}"] = float(answer == name) if answer else np.nan
        row.update(_clinical(pair, settings.clinical))
        rows[pair.id] = row
    return pd.DataFrame.from_dict(rows, orient="index").astype(float)


def _model(params: dict, seed: int) -> HistGradientBoostingClassifier:
    return HistGradientBoostingClassifier(class_weight="balanced", random_state=seed, early_stopping=False, **params)


def _probabilities(model: HistGradientBoostingClassifier, features: pd.DataFrame) -> np.ndarray:
    """Class probabilities in CLASSES order (0 for classes the training pairs lacked)."""
    probabilities = np.zeros((len(features), len(CLASSES)))
    if len(features):
        known = model.predict_proba(features)
        for k, name in enumerate(model.classes_):
            probabilities[:, CLASSES.index(name)] = known[:, k]
    return probabilities


def fit_predict_fold(
    features: pd.DataFrame, labels: pd.Series, fold: dict, settings: GbmSettings
) -> tuple[pd.DataFrame, dict]:
    """Test-pair probabilities of one fold and the chosen grid entry with every entry's validation score."""
    train = [i for i in fold["train"] if i in features.index]
    val = [i for i in fold["val"] if i in features.index and i not in set(fold["test"])]
    test = [i for i in fold["test"] if i in features.index]
    scores = []
    for params in settings.grid:
        if not val:
            break
        model = _model(params, settings.seed).fit(features.loc[train], labels.loc[train])
        scores.append(balanced_accuracy_score(labels.loc[val], model.predict(features.loc[val])))
    best = int(np.argmax(scores)) if scores else 0
    fit_on = train + [i for i in val if i not in set(train)]
    model = _model(settings.grid[best], settings.seed).fit(features.loc[fit_on], labels.loc[fit_on])
    probabilities = pd.DataFrame(_probabilities(model, features.loc[test]), index=test,
                                 columns=[f"prob_{c}" for c in CLASSES])
    probabilities["predicted"] = [CLASSES[k] for k in probabilities.to_numpy().argmax(axis=1)] if test else []
    return probabilities, {"fold": int(fold["fold"]), "chosen": settings.grid[best],
                           "validation_balanced_accuracy": [float(s) for s in scores],
                           "n_train": len(fit_on)}


def _fold_job(features: pd.DataFrame, labels: pd.Series, fold: dict, settings: GbmSettings):
    with threadpool_limits(limits=1):  # tiny fits: OpenMP threads only contend
        return fit_predict_fold(features, labels, fold, settings)


def predict_folds(
    pairs: pd.DataFrame, features: pd.DataFrame, folds: dict, settings: GbmSettings, workers: int = 1
) -> tuple[pd.DataFrame, list[dict]]:
    """Predictions of every test pair that has features (id, predicted, prob_*, fold) and per-fold choices;
    the folds are fitted `workers` at a time (joblib processes)."""
    labels = pairs.set_index("id")["label"]
    results = Parallel(n_jobs=min(workers, len(folds["folds"])) or 1)(
        delayed(_fold_job)(features, labels, fold, settings) for fold in folds["folds"]
    )
    frames = [probabilities.assign(fold=choice["fold"]) for probabilities, choice in results]
    choices = [choice for _, choice in results]
    predictions = pd.concat(frames) if frames else pd.DataFrame()
    return predictions.rename_axis("id").reset_index(), choices
