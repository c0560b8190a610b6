"""The workflow's TSV tables (studies, pairs, manifest, summary) as read by every stage."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def read_tsv(path: str | Path) -> pd.DataFrame:
    """A tab-separated table with every column as text and empty cells kept as ''."""
    return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
