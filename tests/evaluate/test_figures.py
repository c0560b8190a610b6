"""Figures of the evaluate stage on small inputs: a confusion matrix per row, training curves per fold with the
selected epoch, and the rule baseline's title saying which pairs its matrix counts."""

import matplotlib.image as mpimg
import numpy as np
import pandas as pd

from ranoflow.baseline.figures import confusion_title
from ranoflow.evaluate.ablations import grouped_differences
from ranoflow.evaluate.figures import plot_confusion_grid, row_label
from ranoflow.evaluate.training_curves import plot_training_curves


def doc(name: str, diagonal: int) -> dict:
    confusion = np.full((4, 4), 1) + np.eye(4, dtype=int) * diagonal
    return {"experiment": name, "balanced_accuracy": {"median": 0.5}, "pooled": {"confusion": confusion.tolist()}}


def test_confusion_grid_has_a_panel_per_row(tmp_path):
    path = tmp_path / "grid.png"
    plot_confusion_grid([doc(f"row{i}", i) for i in range(5)], path, oracles={"row0"}, columns=4)
    height, width = mpimg.imread(path).shape[:2]
    assert height > width / 4 * 1.5  # two rows of panels for five rows at four per line
    assert row_label("row0", oracle=True) == "row0 (oracle)"


def test_training_curves_mark_each_folds_selected_epoch(tmp_path):
    history = pd.DataFrame({"epoch": range(5), "train_loss": [1.4, 1.2, 1.0, 0.9, 0.8],
                            "val_loss": [1.5, 1.3, 1.1, 1.2, 1.3], "val_balanced_accuracy": [0.25, 0.4, 0.6, 0.5, 0.5]})
    path = tmp_path / "curves.png"
    plot_training_curves({0: history, 1: history.head(4)}, {0: 2, 1: 1}, "cnn", path, "val_loss")
    image = mpimg.imread(path)
    assert image.shape[1] > image.shape[0] and image.std() > 0.05


def test_rule_baseline_title_says_which_pairs_it_counts():
    metrics = {"median_balanced_accuracy": 1.0, "n_missing_segmentation": 4,
               "settings": {"missing_prediction": "SD"}, "pooled": {"balanced_accuracy": 0.9616}}
    title = confusion_title(metrics, 87)
    assert "all 87 pairs it scored" in title and "4 without a segmentation answered SD" in title
    assert "pooled balanced accuracy 0.962" in title and "median over folds 1.000" in title
    assert "without a segmentation" not in confusion_title({**metrics, "n_missing_segmentation": 0}, 83)


def test_grouped_differences_keep_the_reference_first_and_baselines_last():
    table = pd.DataFrame({
        "experiment": ["rule", "ref", "a", "b", "majority"],
        "ablation": ["baseline", "reference", "input", "input", "baseline"],
        "verdict": ["better", "reference", "worse", "indistinguishable", "worse"],
        "delta_balanced_accuracy": [0.3, None, -0.2, -0.01, -0.4],
    })
    assert grouped_differences(table)["experiment"].tolist() == ["ref", "b", "a", "rule", "majority"]
