"""The listing of the tensor-store files one set of reference studies reads (rule tensor_set).

A train job depends on this one file instead of hundreds of store files, so Snakemake plans a grid of many
train jobs without handling every store file once per job; the listing changes, and its train jobs rerun,
when a store file of the set is rebuilt."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def store_listing(inputs: list[str | Path]) -> pd.DataFrame:
    """Every store file under `inputs` (files, or per-patient folders), sorted, with its size in bytes."""
    files = []
    for item in map(Path, inputs):
        files += sorted(p for p in item.rglob("*.npy")) if item.is_dir() else [item]
    return pd.DataFrame({"path": [str(p) for p in files], "bytes": [p.stat().st_size for p in files]})
