"""Figures of the rule-based baseline for the report."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402
from sklearn.metrics import ConfusionMatrixDisplay  # noqa: E402

from ranoflow.baseline.criteria import CRITERIA  # noqa: E402
from ranoflow.vocabulary import CLASSES  # noqa: E402


def baseline_figure(predictions: pd.DataFrame, metrics: dict) -> plt.Figure:
    """Confusion matrix of the rule (all scored pairs) beside the size change per expert rating."""
    scored = predictions.dropna(subset=["predicted"])
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5), layout="constrained")
    ConfusionMatrixDisplay.from_predictions(
        scored["label"], scored["predicted"], labels=list(CLASSES), ax=left, colorbar=False
    )
    left.set(xlabel="rule", ylabel="expert rating")
    left.set_title(confusion_title(metrics, len(scored)), fontsize=9)

    method = metrics["settings"]["method"]
    criteria = CRITERIA[method]
    rng = np.random.default_rng(0)
    change = pd.to_numeric(scored.get("change"), errors="coerce") * 100
    new_lesion = pd.to_numeric(scored.get("new_lesions"), errors="coerce").fillna(0) > 0
    for position, name in enumerate(CLASSES):
        rows = (scored["label"] == name) & change.notna()
        x = position + rng.uniform(-0.15, 0.15, rows.sum())
        right.scatter(x, change[rows], s=18, c=np.where(new_lesion[rows], "tab:red", "tab:blue"), alpha=0.7)
    right.axhline(-criteria.pr_decrease * 100, color="grey", linestyle="--", label="PR threshold")
    right.axhline(criteria.pd_increase * 100, color="grey", linestyle=":", label="PD threshold")
    right.scatter([], [], c="tab:red", s=18, label="new lesion (PD)")
    right.set(xticks=range(len(CLASSES)), xticklabels=CLASSES, xlabel="expert rating",
              ylabel=f"enhancing {'volume' if method == 'volumetric' else 'product'} change (%)",
              title=f"size change per pair\n({int(change.isna().sum())} without a relative change not shown)")
    right.set_yscale("symlog", linthresh=100)
    top = float(change.max()) if change.notna().any() else 100.0
    right.set_ylim(-105, max(150.0, top * 1.3))
    right.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    right.legend(loc="upper left", fontsize="small")
    return figure


def confusion_title(metrics: dict, n_scored: int) -> str:
    """Which pairs the matrix counts (all the rule scored, the missing-segmentation ones included) and the
    figures on exactly those pairs; the summary's own rows are on the common test pairs."""
    missing = int(metrics.get("n_missing_segmentation") or 0)
    answer = (metrics.get("settings") or {}).get("missing_prediction", "")
    without = f"\n({missing} without a segmentation answered {answer})" if missing else ""
    pooled = (metrics.get("pooled") or {}).get("balanced_accuracy")
    name = metrics.get("experiment", "rule-based RANO")
    return (f"{name} on all {n_scored} pairs it scored{without}\n"
            f"pooled balanced accuracy {_format(pooled)}, median over folds "
            f"{_format(metrics.get('median_balanced_accuracy'))}")


def _format(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
