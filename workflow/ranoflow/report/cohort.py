"""Cohort tables for the report: patients, studies, pairs per class and fold, exclusions with reasons."""

from __future__ import annotations

import pandas as pd

from ranoflow.vocabulary import CLASSES


def overview(studies: pd.DataFrame, pairs: pd.DataFrame, excluded: pd.DataFrame) -> pd.DataFrame:
    """One row per cohort count (item, value)."""
    rated = studies["rating"].isin(CLASSES)
    items = {
        "patients with a study folder": studies["patient"].nunique(),
        "study folders": len(studies),
        "studies rated CR/PR/SD/PD": int(rated.sum()),
        "studies with a DeepBraTumIA segmentation": int((studies["seg_deepbratumia"] != "").sum()),
        "studies with an HD-GLIO-AUTO segmentation": int((studies["seg_hdglio"] != "").sum()),
        "scorable pairs": len(pairs),
        "patients with a scorable pair": pairs["patient"].nunique(),
        "excluded studies / rating rows": len(excluded),
    }
    return pd.DataFrame({"item": list(items), "value": list(items.values())})


def pairs_per_class(pairs: pd.DataFrame, folds: dict | None = None) -> pd.DataFrame:
    """Pairs per RANO class: all pairs, then each fold's test set (when folds are given)."""
    groups = {"all pairs": pairs}
    for entry in (folds or {}).get("folds", []):
        groups[f"fold {entry['fold']} test"] = pairs[pairs["id"].isin(entry["test"])]
    rows = []
    for name, group in groups.items():
        counts = group["label"].value_counts().reindex(list(CLASSES), fill_value=0)
        rows.append({"set": name, **counts.to_dict(), "total": len(group), "patients": group["patient"].nunique()})
    return pd.DataFrame(rows, columns=["set", *CLASSES, "total", "patients"])


def exclusion_reasons(excluded: pd.DataFrame) -> pd.DataFrame:
    """How many studies / rating rows each exclusion reason removed, most frequent first."""
    counts = excluded.groupby("reason").agg(count=("study", "size"), patients=("patient", "nunique"))
    return counts.sort_values("count", ascending=False).reset_index()


def flagged_studies(registration: pd.DataFrame) -> pd.DataFrame:
    """Studies whose preprocessing is not 'ok' (flagged or failed), from results/qc/registration.tsv."""
    if "status" not in registration:
        return registration.iloc[0:0]
    return registration[registration["status"] != "ok"].reset_index(drop=True)
