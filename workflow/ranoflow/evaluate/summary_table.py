"""results/metrics/summary.tsv: one row per experiment and baseline, best median balanced accuracy first.

Every metric column is computed on the common test pairs of each fold (ranoflow.evaluate.common_pairs), so
`n_pairs` is the same on every row; `own_*` are the row's figures on all the pairs it scored itself. A row
trained with several seeds pools its fold x seed runs: the balanced-accuracy statistics are over the runs,
`seed_std_balanced_accuracy` is the spread of the seeds' medians."""

from __future__ import annotations

import pandas as pd

from ranoflow.evaluate.ablations import DIFFERENCE_COLUMNS
from ranoflow.evaluate.experiment_metrics import fold_runs, pairs_scored
from ranoflow.vocabulary import CLASSES

SUMMARY_COLUMNS = [
    "experiment", "ablation", "protocol", "median_balanced_accuracy", "mean_balanced_accuracy",
    "std_balanced_accuracy", "q25_balanced_accuracy", "q75_balanced_accuracy", "iqr_balanced_accuracy",
    "pooled_balanced_accuracy", "ci95_low", "ci95_high", "median_macro_f1", "pooled_macro_f1", "roc_auc_macro",
    *[f"recall_{c}" for c in CLASSES], "n_folds", "n_seeds", "seed_std_balanced_accuracy", "n_pairs", "chance_per_fold", "own_median_balanced_accuracy",
    "own_n_pairs", *DIFFERENCE_COLUMNS, "information_ceiling", "ceiling_median_balanced_accuracy",
    "architecture", "modalities", "input", "references", "pretraining", "clinical", "leaky",
    "reads", "learns", "oracle",
]


def is_oracle(value: object) -> bool:
    """Whether a summary row's `oracle` cell marks it as one (it holds the reason; blank, NaN or False if not)."""
    return not pd.isna(value) and str(value).strip() not in ("", "False", "false")


def summary_row(doc: dict) -> dict:
    ba, pooled = doc["balanced_accuracy"], doc["pooled"]
    folds = fold_runs(doc)
    ci = pooled.get("balanced_accuracy_ci95") or [None, None]
    row = {
        "experiment": doc["experiment"],
        "median_balanced_accuracy": ba["median"],
        "mean_balanced_accuracy": ba["mean"],
        "std_balanced_accuracy": ba["std"],
        "q25_balanced_accuracy": ba["q25"],
        "q75_balanced_accuracy": ba["q75"],
        "iqr_balanced_accuracy": ba["iqr"],
        "pooled_balanced_accuracy": pooled["balanced_accuracy"],
        "ci95_low": ci[0],
        "ci95_high": ci[1],
        "median_macro_f1": doc["macro_f1"]["median"],
        "pooled_macro_f1": pooled["macro_f1"],
        "roc_auc_macro": (pooled.get("roc_auc") or {}).get("macro"),
        **{f"recall_{c}": pooled["per_class"][c]["recall"] for c in CLASSES},
        "n_folds": doc["n_folds"],
        "n_seeds": doc.get("seeds", {}).get("n", 1),
        "seed_std_balanced_accuracy": doc.get("seeds", {}).get("std_balanced_accuracy", 0.0),
        "n_pairs": pairs_scored(doc),
        "chance_per_fold": ",".join(f"{f['chance_balanced_accuracy']:.3g}" for f in folds
                                    if "chance_balanced_accuracy" in f),
        "own_median_balanced_accuracy": doc.get("own", {}).get("median_balanced_accuracy", ba["median"]),
        "own_n_pairs": doc.get("own", {}).get("n_pairs", pairs_scored(doc)),
    }
    for key in (
        "ablation", "protocol", "architecture", "modalities", "input", "references", "pretraining", "clinical", "leaky"
    ):
        row[key] = doc.get(key, "")
    # what a row reads, whether it learns, whether it is an oracle: baseline rows say so in their metrics JSON
    network = doc.get("ablation", "") != "baseline"
    row["reads"] = doc.get("reads", "preprocessed images" if network else "")
    row["learns"] = doc.get("learns", network if network else "")
    row["oracle"] = doc.get("oracle", "")
    return row


def summary_table(
    docs: list[dict], differences: dict[str, dict] | None = None, ceilings: dict[str, str] | None = None
) -> pd.DataFrame:
    """One row per experiment (and baseline), best median balanced accuracy first.

    differences: row name -> its paired difference with its reference experiment (ranoflow.evaluate.ablations);
    ceilings: row name -> the rule-baseline row given only that row's reference studies."""
    rows = [summary_row(d) for d in docs]
    median = {row["experiment"]: row["median_balanced_accuracy"] for row in rows}
    for row in rows:
        row.update((differences or {}).get(row["experiment"], {}))
        ceiling = (ceilings or {}).get(row["experiment"], "")
        row["information_ceiling"] = ceiling
        row["ceiling_median_balanced_accuracy"] = median.get(ceiling) if ceiling else None
    table = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    return table.sort_values(
        ["median_balanced_accuracy", "pooled_balanced_accuracy", "experiment"],
        ascending=[False, False, True], kind="mergesort",
    ).reset_index(drop=True)
