"""Classification metrics (scikit-learn) for the four RANO classes, bootstrap CI and fold statistics."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from sklearn.metrics import (
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    roc_auc_score,
)

from ranoflow.vocabulary import CLASSES

LABELS = list(range(len(CLASSES)))


def balanced_accuracy(y_true: Sequence[int], y_pred: Sequence[int]) -> float:
    """Mean recall over the classes present in y_true."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "y_pred contains classes not in y_true"
        return float(balanced_accuracy_score(y_true, y_pred))


def roc_auc_ovr(y_true: Sequence[int], probs: np.ndarray) -> dict[str, float | None]:
    """One-vs-rest ROC-AUC per class (None where the class or its complement is absent) and their mean."""
    y = np.asarray(y_true)
    out: dict[str, float | None] = {}
    for index, name in enumerate(CLASSES):
        positive = y == index
        out[name] = float(roc_auc_score(positive, probs[:, index])) if 0 < positive.sum() < len(y) else None
    defined = [v for v in out.values() if v is not None]
    out["macro"] = float(np.mean(defined)) if defined else None
    return out


def classes_present(y_true: Sequence[int]) -> list[int]:
    """Class indices with at least one true pair."""
    return sorted(set(np.asarray(y_true, dtype=int).tolist()))


def chance_balanced_accuracy(y_true: Sequence[int]) -> float:
    """Balanced accuracy of a constant or random guess: 1 / the number of classes present."""
    present = classes_present(y_true)
    return 1.0 / len(present) if present else float("nan")


def macro_f1(y_true: Sequence[int], y_pred: Sequence[int]) -> float:
    """Mean F1 over the classes present in y_true: a class absent from a fold is not counted as 0."""
    present = classes_present(y_true)
    if not present:
        return float("nan")
    return float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0))


def classification_metrics(y_true: Sequence[int], y_pred: Sequence[int], probs: np.ndarray | None = None) -> dict:
    """Balanced accuracy, macro-F1 (classes present), per-class precision/recall/F1/support, confusion (rows
    true), ROC-AUC, and the chance level with the classes absent from y_true."""
    y_true, y_pred = np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=LABELS, zero_division=0
    )
    result = {
        "n": int(len(y_true)),
        "balanced_accuracy": balanced_accuracy(y_true, y_pred),
        "accuracy": float(np.mean(y_true == y_pred)) if len(y_true) else float("nan"),
        "macro_f1": macro_f1(y_true, y_pred),
        "classes_absent": [CLASSES[i] for i in LABELS if i not in classes_present(y_true)],
        "chance_balanced_accuracy": chance_balanced_accuracy(y_true),
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(CLASSES)
        },
        "confusion": confusion_matrix(y_true, y_pred, labels=LABELS).tolist(),
    }
    if probs is not None:
        result["roc_auc"] = roc_auc_ovr(y_true, np.asarray(probs, dtype=float))
    return result


def patient_resamples(groups: Sequence, n: int, seed: int = 0) -> np.ndarray:
    """(n, items): how often each item is drawn in each of `n` bootstrap resamples of its group (patient).

    A patient gives several correlated pairs, so a resample draws patients with replacement and takes all of
    a drawn patient's pairs (each item once per time its patient is drawn)."""
    codes = np.unique(np.asarray(groups), return_inverse=True)[1].ravel()
    count = int(codes.max()) + 1 if len(codes) else 0
    draws = np.random.default_rng(seed).integers(0, count, (n, count))
    times = np.zeros((n, count))
    np.add.at(times, (np.repeat(np.arange(n), count), draws.ravel()), 1)
    return times[:, codes]


def weighted_confusion(y_true: np.ndarray, y_pred: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(resamples, true, predicted) confusion matrices of the pairs weighted by each row of `weights`."""
    k = len(CLASSES)
    cells = np.eye(k * k)[np.asarray(y_true, dtype=int) * k + np.asarray(y_pred, dtype=int)]
    return (np.atleast_2d(weights) @ cells).reshape(-1, k, k)


def confusion_scores(confusion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Balanced accuracy and macro-F1 of each confusion matrix, both over the classes present in its true
    rows (as balanced_accuracy and macro_f1 above)."""
    true, predicted = confusion.sum(-1), confusion.sum(-2)
    hits = np.diagonal(confusion, axis1=-2, axis2=-1)
    present = true > 0
    recall = hits / np.where(present, true, 1)
    precision = hits / np.where(predicted > 0, predicted, 1)
    both = precision + recall
    f1 = np.where(both > 0, 2 * precision * recall / np.where(both > 0, both, 1), 0.0)
    classes = present.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (recall * present).sum(-1) / classes, (f1 * present).sum(-1) / classes


def bootstrap_ci(
    y_true: Sequence[int],
    y_pred: Sequence[int],
    n: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    groups: Sequence[str] | None = None,
) -> tuple[float, float] | None:
    """Percentile bootstrap CI of balanced accuracy, resampling groups (patients) with replacement
    (without `groups` every pair is its own group)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if n == 0 or len(y_true) == 0:
        return None
    weights = patient_resamples(groups if groups is not None else np.arange(len(y_true)), n, seed)
    stats, _ = confusion_scores(weighted_confusion(y_true, y_pred, weights))
    alpha = (1 - level) / 2
    return float(np.nanquantile(stats, alpha)), float(np.nanquantile(stats, 1 - alpha))


def fold_statistics(values: Sequence[float]) -> dict:
    """Median, mean, standard deviation, quartiles and IQR of a per-fold metric."""
    v = np.asarray(values, dtype=float)
    q25, median, q75 = np.quantile(v, [0.25, 0.5, 0.75])
    return {
        "per_fold": [float(x) for x in v],
        "median": float(median),
        "mean": float(v.mean()),
        "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
        "q25": float(q25),
        "q75": float(q75),
        "iqr": float(q75 - q25),
        "min": float(v.min()),
        "max": float(v.max()),
    }
