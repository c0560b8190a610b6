"""The report's front page and explanations page on small frames: ranking order, CIs, PD first, oracle and
reference labels, paired differences grouped by ablation, explanations grouped by true class."""

import base64
import re

import matplotlib.image as mpimg
import pandas as pd
import pytest

from ranoflow.evaluate.figures import plot_ablations, plot_ranking
from ranoflow.report.explanations import explanations_page, grouped_pairs, method_rates, warning
from ranoflow.report.front_page import differences_table, front_page, headline, landing_table, per_class_table


def summary() -> pd.DataFrame:
    """Four rows as summary.tsv ranks them (best median first), as read_tsv gives them (text)."""
    rows = [
        ("rano_rules", "baseline", "1.0", "1.0", "1.0", "same rule that made the labels", "better", "0.35"),
        ("best_cnn", "reference", "0.67", "0.53", "0.73", "", "reference", ""),
        ("other_cnn", "input", "0.55", "0.40", "0.62", "", "indistinguishable", "-0.05"),
        ("worst_cnn", "input", "0.41", "0.25", "0.49", "", "worse", "-0.26"),
    ]
    frame = pd.DataFrame(rows, columns=["experiment", "ablation", "median_balanced_accuracy", "ci95_low",
                                        "ci95_high", "oracle", "verdict", "delta_balanced_accuracy"])
    frame["pooled_balanced_accuracy"] = frame["median_balanced_accuracy"]
    frame["median_macro_f1"] = ["1.0", "0.53", "0.5", "0.42"]
    for c, values in {"PD": ["1.0", "0.2", "0.6", "0.63"], "SD": ["1.0", "0.93", "0.6", "0.33"],
                      "PR": ["1.0", "0.87", "0.5", "0.33"], "CR": ["1.0", "0.55", "0.8", "0.18"]}.items():
        frame[f"recall_{c}"] = values
    frame["reference_experiment"] = "best_cnn"
    delta = pd.to_numeric(frame["delta_balanced_accuracy"], errors="coerce")
    frame["delta_balanced_accuracy_ci95_low"] = (delta - 0.1).map(lambda v: "" if pd.isna(v) else f"{v:.2f}")
    frame["delta_balanced_accuracy_ci95_high"] = (delta + 0.1).map(lambda v: "" if pd.isna(v) else f"{v:.2f}")
    frame.loc[2, "delta_balanced_accuracy_ci95_high"] = "0.05"
    frame.loc[3, "delta_balanced_accuracy_ci95_high"] = "-0.16"
    frame["delta_macro_f1"] = frame["delta_balanced_accuracy"]
    frame["delta_macro_f1_ci95_low"] = frame["delta_balanced_accuracy_ci95_low"]
    frame["delta_macro_f1_ci95_high"] = frame["delta_balanced_accuracy_ci95_high"]
    return frame


def test_per_class_table_puts_pd_first_and_labels_oracle_and_reference():
    table = per_class_table(summary())
    assert list(table.columns[:8]) == ["row", "BA [95 % CI]", "macro-F1", "recall PD", "recall SD", "recall PR",
                                       "recall CR", "verdict"]
    assert table["row"].tolist() == ["rano_rules", "best_cnn", "other_cnn", "worst_cnn"]  # ranking order kept
    assert table.loc[1, "BA [95 % CI]"] == "0.67 [0.53, 0.73]"
    assert table["oracle"].tolist() == [True, False, False, False]
    assert table["reference"].tolist() == [False, True, False, False]


def test_headline_names_the_best_experiment_and_its_weak_classes_not_the_oracle():
    text = headline(summary(), ["best_cnn", "other_cnn", "worst_cnn"], low_recall=0.5)
    assert text.startswith("Best experiment: best_cnn, median balanced accuracy 0.67 [0.53, 0.73]")
    assert "PD 0.20" in text and "SD" not in text


def test_differences_are_grouped_by_ablation_with_baselines_last():
    table = differences_table(summary())
    assert table["ablation"].tolist() == ["reference", "input", "input", "baseline"]
    assert table["row"].tolist() == ["best_cnn", "other_cnn", "worst_cnn", "rano_rules"]
    assert table.loc[2, "ΔBA [95 % CI]"] == "-0.26 [-0.36, -0.16]"
    assert table.loc[2, "verdict"] == "worse"


def test_landing_table_is_narrow_and_flags_low_recall(tmp_path):
    ranking = tmp_path / "ranking.png"
    plot_ranking(summary(), ranking)
    fragment = landing_table(summary(), ranking, ["best_cnn"], low_recall=0.5)
    assert fragment.count("data:image/png;base64,") == 1  # the ranking, embedded
    header = re.findall(r"<th>(.*?)</th>", fragment)
    assert header == ["row", "BA [95 % CI]", "macro-F1", "recall PD", "recall SD", "recall PR", "recall CR",
                      "verdict"]
    assert '<td class="low">0.20</td>' in fragment  # best_cnn's PD recall stands out
    assert "oracle</span>" in fragment and "reference</span>" in fragment
    assert "<body" not in fragment  # a fragment for the landing text, not a page


def test_front_page_embeds_both_figures_and_the_tables(tmp_path):
    frame = summary()
    ranking, ablations = tmp_path / "ranking.png", tmp_path / "ablations.png"
    plot_ranking(frame, ranking)
    plot_ablations(frame, ablations)
    page = front_page(frame, ranking, ablations, ["best_cnn", "other_cnn", "worst_cnn"], 0.5)
    images = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page)
    assert len(images) == 2 and all(base64.b64decode(i).startswith(b"\x89PNG") for i in images)
    assert page.index("Per class") < page.index("Ablations") and "-0.26 [-0.36, -0.16]" in page
    height, width = mpimg.imread(ranking).shape[:2]
    assert width <= 700  # fits the landing column and the page without scaling the text away


def explain_summary() -> pd.DataFrame:
    rows = []
    for fold, pair, label, predicted in [("0", "P-1_a", "PD", "SD"), ("1", "P-2_b", "PD", "PD"),
                                         ("0", "P-3_c", "CR", "CR")]:
        for method, hit in (("gradcam", 0.0), ("saliency", 1.0)):
            rows.append({"level": "pair", "experiment": "cnn", "fold": fold, "pair": pair, "label": label,
                         "predicted": predicted, "selection": "correct" if label == predicted else "wrong",
                         "method": method, "target": "predicted", "pointing_hit": hit, "tumour_share": 0.1,
                         "figure": f"{pair}_{method}.png"})
    rows.append({"level": "aggregate", "experiment": "cnn", "fold": "all", "pair": "all", "label": "all",
                 "method": "saliency", "pointing_hit": 1.0})
    return pd.DataFrame(rows)


def test_explanations_are_grouped_by_true_class_pd_first_then_correct_and_wrong():
    groups = grouped_pairs(explain_summary())
    assert [(g["label"], g["selection"]) for g in groups] == [("PD", "correct"), ("PD", "wrong"), ("CR", "correct")]
    assert set(groups[1]["rows"]["pair"]) == {"P-1_a"}


def test_a_method_that_rarely_points_is_called_unreliable():
    rates = method_rates(explain_summary(), 0.5).set_index("method")
    assert rates.loc["gradcam", "pointing_hit_rate"] == 0 and rates.loc["saliency", "pointing_hit_rate"] == 1
    assert rates["reliable"].tolist() == [False, True]
    assert "not a reliable explanation" in warning("gradcam", 0.07, 0.5)
    assert warning("saliency", 0.86, 0.5) == ""


def test_explanations_page_captions_give_the_true_class(tmp_path):
    summary = explain_summary()
    for (fold,) in summary.loc[summary["level"] == "pair", ["fold"]].drop_duplicates().itertuples(index=False):
        (tmp_path / fold).mkdir()
    for row in summary[summary["level"] == "pair"].itertuples():
        (tmp_path / row.fold / row.figure).write_bytes(b"\x89PNG fake")
    page = explanations_page(summary, {("cnn", f): tmp_path / f for f in ("0", "1")}, 0.5)
    assert page.index("true PD, correctly") < page.index("true PD, wrongly") < page.index("true CR, correctly")
    assert "<b>true PD</b>, predicted SD" in page and "gradcam hit rate 0%" in page
    assert "not a reliable explanation" in page
    # the method that points best comes first beside each pair
    wrong = page[page.index("true PD, wrongly"):]
    assert wrong.index("saliency of the") < wrong.index("gradcam of the")


@pytest.mark.parametrize("empty", [pd.DataFrame(columns=["level", "experiment"])])
def test_nothing_explained_says_so(empty):
    assert "Nothing was explained" in explanations_page(empty, {}, 0.5)
