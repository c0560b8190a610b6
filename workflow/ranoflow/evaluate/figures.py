"""Figures of the evaluate stage: the ranking of every row with its CI, balanced accuracy per fold, confusion
matrices and the ablation differences."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ranoflow.evaluate.ablations import grouped_differences  # noqa: E402
from ranoflow.evaluate.summary_table import is_oracle  # noqa: E402
from ranoflow.vocabulary import CLASSES  # noqa: E402

VERDICT_COLOURS = {"better": "tab:green", "worse": "tab:red", "indistinguishable": "tab:grey"}


def plot_balanced_accuracy(docs: list[dict], path: str | Path, chance: float = 1 / len(CLASSES)) -> None:
    """Per-fold balanced accuracy (points) and median (bar) of every experiment, best on top."""
    docs = sorted(docs, key=lambda d: d["balanced_accuracy"]["median"])
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(docs) + 1.5))
    rng = np.random.default_rng(0)
    for y, doc in enumerate(docs):
        values = doc["balanced_accuracy"]["per_fold"]
        ax.scatter(values, y + rng.uniform(-0.12, 0.12, len(values)), s=18, color="tab:blue", alpha=0.8, zorder=3)
        ax.plot([doc["balanced_accuracy"]["median"]] * 2, [y - 0.3, y + 0.3], color="black", lw=2, zorder=4)
    ax.axvline(chance, color="grey", ls="--", lw=1, label=f"chance ({chance:.2f})")
    ax.set_yticks(range(len(docs)), [d["experiment"] for d in docs])
    ax.set_xlim(0, 1)
    ax.set_xlabel("balanced accuracy (points: folds, bar: median)")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _draw_confusion(ax: plt.Axes, matrix: np.ndarray, title: str) -> None:
    """Counts and row fractions of one pooled confusion matrix (rows: true class) on `ax`."""
    rows = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    ax.imshow(rows, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(CLASSES)):
        for j in range(len(CLASSES)):
            ax.text(j, i, f"{int(matrix[i, j])}\n{rows[i, j]:.0%}", ha="center", va="center",
                    color="white" if rows[i, j] > 0.5 else "black", fontsize=8)
    ax.set_xticks(range(len(CLASSES)), CLASSES)
    ax.set_yticks(range(len(CLASSES)), CLASSES)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)


def row_label(name: str, oracle: bool = False, reference: bool = False) -> str:
    """A row's name as figures show it: oracle and reference rows say so."""
    return name + (" (oracle)" if oracle else "") + (" (reference)" if reference else "")


def plot_confusion_grid(docs: list[dict], path: str | Path, oracles: set[str] = frozenset(),
                        columns: int = 4) -> None:
    """Pooled confusion matrices of every row (docs in display order) on the common test pairs, one panel each."""
    n_rows = max(1, -(-len(docs) // columns))
    fig, axes = plt.subplots(n_rows, columns, figsize=(3.4 * columns, 3.3 * n_rows), squeeze=False)
    for ax, doc in zip(axes.flat, docs):
        matrix = np.asarray(doc["pooled"]["confusion"], dtype=float)
        name = row_label(doc["experiment"], doc["experiment"] in oracles)
        _draw_confusion(ax, matrix, f"{name}\nBA median {doc['balanced_accuracy']['median']:.2f}, "
                                    f"{int(matrix.sum())} pairs")
    for ax in list(axes.flat)[len(docs):]:
        ax.axis("off")
    fig.suptitle("Confusion matrices on the common test pairs (rows: expert rating; counts and row shares)",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_ranking(table: pd.DataFrame, path: str | Path) -> None:
    """Every row of summary.tsv ranked by median balanced accuracy (the tick), with the pooled balanced
    accuracy (the dot) and its 95 % patient-bootstrap CI (the bar); oracle rows hatched grey and labelled,
    bars coloured by the verdict against the reference experiment."""
    rows = table.iloc[::-1].reset_index(drop=True)  # best on top
    fig, ax = plt.subplots(figsize=(6.4, 0.36 * len(rows) + 1.7), layout="constrained")
    labels = []
    for y, row in rows.iterrows():
        oracle = is_oracle(row.get("oracle"))
        verdict = str(row.get("verdict", ""))
        colour = "tab:grey" if oracle else {"reference": "tab:blue"}.get(verdict, VERDICT_COLOURS.get(verdict, "tab:blue"))
        low, high = (float(pd.to_numeric(row[key], errors="coerce")) for key in ("ci95_low", "ci95_high"))
        ax.barh(y, high - low, left=low, height=0.55, color=colour, alpha=0.35 if oracle else 0.55,
                hatch="//" if oracle else None, edgecolor=colour, lw=0.5)
        ax.plot(float(pd.to_numeric(row["pooled_balanced_accuracy"], errors="coerce")), y, "o", color=colour, ms=4, zorder=4)
        median = float(pd.to_numeric(row["median_balanced_accuracy"], errors="coerce"))
        ax.plot([median] * 2, [y - 0.32, y + 0.32], color="black", lw=2, zorder=5)
        ax.text(1.01, y, f"{median:.2f}", va="center", fontsize=8, transform=ax.get_yaxis_transform())
        labels.append(row_label(row["experiment"], oracle, verdict == "reference"))
    chance = 1 / len(CLASSES)
    ax.axvline(chance, color="grey", ls="--", lw=1)
    ax.text(chance, len(rows) - 0.4, " chance", fontsize=7, color="grey")
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_ylim(-0.6, len(rows) - 0.2)
    ax.set_xlim(0, 1.0)
    ax.set_xlabel("balanced accuracy: | median over folds (value at right), ● pooled,\n"
                  "bar: 95 % CI of the pooled value (bootstrap over patients)", fontsize=8)
    ax.set_title("Ranking by median balanced accuracy; colour: verdict vs the reference\n(green better, red "
                 "worse, grey indistinguishable, blue the reference), hatched: oracle", fontsize=8)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_ablations(table: pd.DataFrame, path: str | Path) -> None:
    """Each compared row's difference of pooled balanced accuracy from its reference experiment with its
    paired 95 % CI, grouped by ablation (baselines last, top to bottom), coloured by verdict."""
    rows = grouped_differences(table)
    rows = rows[rows["verdict"].isin(list(VERDICT_COLOURS))].iloc[::-1].reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(7.5, 0.34 * max(len(rows), 1) + 1.4), layout="constrained")
    labels = []
    for y, row in rows.iterrows():
        delta = float(row["delta_balanced_accuracy"])
        low, high = float(row["delta_balanced_accuracy_ci95_low"]), float(row["delta_balanced_accuracy_ci95_high"])
        ax.errorbar(delta, y, xerr=[[delta - low], [high - delta]], fmt="o", color=VERDICT_COLOURS[row["verdict"]],
                    capsize=3)
        name = row_label(row["experiment"], is_oracle(row.get("oracle")))
        labels.append(f"{row['ablation'] or '-'}: {name} vs {row['reference_experiment']}")
    ax.axvline(0, color="black", lw=1)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel("difference of balanced accuracy from the reference experiment\n"
                  "(paired 95 % CI, bootstrap over patients)\ngreen better, red worse, grey indistinguishable",
                  fontsize=8)
    if not labels:
        ax.text(0.5, 0.5, "no reference experiment set (evaluate.reference_experiment)", ha="center",
                transform=ax.transAxes)
    fig.savefig(path, dpi=100)
    plt.close(fig)
