"""Training curves of one experiment: loss and validation balanced accuracy per epoch and fold (history.tsv),
with the epoch whose checkpoint was kept (metrics.json `best_epoch`) marked."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402


def plot_training_curves(
    histories: Mapping[int, pd.DataFrame], best_epochs: Mapping[int, int], experiment: str, path: str | Path,
    selection: str = "",
) -> None:
    """Left: training (solid) and validation (dashed) loss; right: validation balanced accuracy; one colour
    per fold, a star on each fold's selected epoch."""
    fig, (loss_ax, ba_ax) = plt.subplots(1, 2, figsize=(10, 3.8))
    for index, (fold, history) in enumerate(sorted(histories.items())):
        colour = f"C{index}"
        epochs = history["epoch"]
        loss_ax.plot(epochs, history["train_loss"], color=colour, lw=1.2, label=f"fold {fold} train")
        loss_ax.plot(epochs, history["val_loss"], color=colour, lw=1.2, ls="--", label=f"fold {fold} validation")
        ba_ax.plot(epochs, history["val_balanced_accuracy"], color=colour, lw=1.2, label=f"fold {fold}")
        best = best_epochs.get(fold)
        chosen = history[history["epoch"] == best]
        if not chosen.empty:
            loss_ax.plot(chosen["epoch"], chosen["val_loss"], "*", color=colour, ms=11, mec="black", zorder=5)
            ba_ax.plot(chosen["epoch"], chosen["val_balanced_accuracy"], "*", color=colour, ms=11, mec="black",
                       zorder=5)
    loss_ax.set(xlabel="epoch", ylabel="loss", title="loss (solid: training, dashed: validation)")
    ba_ax.set(xlabel="epoch", ylabel="validation balanced accuracy", ylim=(0, 1.02),
              title="validation balanced accuracy")
    loss_ax.legend(fontsize=7, ncol=2)
    ba_ax.legend(fontsize=7)
    picked = f" by {selection}" if selection else ""
    fig.suptitle(f"{experiment}: training curves per fold (★ the epoch selected{picked})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
