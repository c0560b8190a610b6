"""Figures of the evaluate stage: balanced accuracy per experiment, a confusion matrix and the ablation differences."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ranoflow.vocabulary import CLASSES  # noqa: E402


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


def plot_confusion(doc: dict, path: str | Path) -> None:
    """Pooled confusion matrix (rows: true class) of one experiment, counts and row fractions."""
    matrix = np.asarray(doc["pooled"]["confusion"], dtype=float)
    rows = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.imshow(rows, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(CLASSES)):
        for j in range(len(CLASSES)):
            ax.text(j, i, f"{int(matrix[i, j])}\n{rows[i, j]:.0%}", ha="center", va="center",
                    color="white" if rows[i, j] > 0.5 else "black", fontsize=8)
    ax.set_xticks(range(len(CLASSES)), CLASSES)
    ax.set_yticks(range(len(CLASSES)), CLASSES)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ba = doc["balanced_accuracy"]["median"]
    ax.set_title(f"{doc['experiment']} (median BA {ba:.2f})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


VERDICT_COLOURS = {"better": "tab:green", "worse": "tab:red", "indistinguishable": "tab:grey"}


def plot_ablations(table: pd.DataFrame, path: str | Path) -> None:
    """Each compared row's difference of pooled balanced accuracy from its reference experiment with its
    paired 95 % CI, grouped by ablation, coloured by verdict."""
    rows = table[table["verdict"].isin(list(VERDICT_COLOURS))].sort_values(["ablation", "experiment"])
    fig, ax = plt.subplots(figsize=(7, 0.45 * max(len(rows), 1) + 1.5))
    labels = []
    for y, (_, row) in enumerate(rows.iterrows()):
        delta = row["delta_balanced_accuracy"]
        err = [[delta - row["delta_balanced_accuracy_ci95_low"]], [row["delta_balanced_accuracy_ci95_high"] - delta]]
        ax.errorbar(delta, y, xerr=err, fmt="o", color=VERDICT_COLOURS[row["verdict"]], capsize=3)
        labels.append(f"{row['ablation'] or '-'}: {row['experiment']} vs {row['reference_experiment']}")
    ax.axvline(0, color="black", lw=1)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel("difference of balanced accuracy from the reference experiment (paired 95 % CI over patients)")
    if not labels:
        ax.text(0.5, 0.5, "no reference experiment set (evaluate.reference_experiment)", ha="center",
                transform=ax.transAxes)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
