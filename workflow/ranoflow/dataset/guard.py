"""Keep every write of the workflow away from a user's dataset.

With `dataset.source: synthetic` the `synthetic_dataset` rule owns `dataset.root`: before running it,
Snakemake deletes its outputs (the root's Imaging/ folder and CSV files). So that root must lie under the
workflow's results folder and hold nothing but a tree the generator made, which it marks with MARKER.
With `dataset.source: lumiere` the tree is read only: results must not land inside it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ranoflow import lumiere

OUTPUT_KEYWORD = "x-output-path"  # marks, in config.schema.yaml, a key naming a folder or file the workflow writes
MARKER = ".ranoflow-synthetic"  # written first by the generator at the root of its tree
_TREE = (lumiere.IMAGING_DIR, lumiere.RATINGS_CSV, lumiere.COMPLETENESS_CSV, lumiere.DEMOGRAPHICS_CSV)


class DatasetRootError(ValueError):
    """dataset.root would let the workflow write into a user's dataset."""


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def check_dataset_root(source: str, root: str | Path, results: str | Path) -> None:
    """Raise DatasetRootError (one line naming the folder) when a run could write into a user's dataset."""
    root, results = Path(root).resolve(), Path(results).resolve()
    if source == "lumiere":
        if _inside(results, root):
            raise DatasetRootError(
                f"dataset.root {root} holds the results folder {results}; run the workflow from outside the dataset"
            )
        return
    if not _inside(root, results) or root == results:
        raise DatasetRootError(
            f"dataset.root {root} is outside {results}: with dataset.source: synthetic the demo tree is "
            f"generated (and replaced) there; keep it under results/, or use config/lumiere.yaml for real data"
        )
    foreign = [name for name in _TREE if (root / name).exists()]
    if foreign and not (root / MARKER).is_file():
        raise DatasetRootError(
            f"dataset.root {root} holds {', '.join(foreign)} not made by the synthetic generator (no {MARKER}); "
            f"refusing to replace it: point dataset.root elsewhere, or use config/lumiere.yaml for real data"
        )


def output_keys(schema: Mapping, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The config keys whose schema entry carries OUTPUT_KEYWORD: the paths the workflow writes to."""
    keys = [path] if schema.get(OUTPUT_KEYWORD) else []
    for name, sub in (schema.get("properties") or {}).items():
        if isinstance(sub, Mapping):
            keys += output_keys(sub, (*path, name))
    return keys


def _value(config: Mapping, key: tuple[str, ...]) -> Any:
    for part in key:
        if not isinstance(config, Mapping) or part not in config:
            return None
        config = config[part]
    return config


def output_inside_dataset(config: Mapping, schema: Mapping) -> str | None:
    """One line naming the first output key of `config` whose path lies inside dataset.root, else None."""
    root = Path(config["dataset"]["root"]).resolve()
    for key in output_keys(schema):
        value = _value(config, key)
        if value and _inside(Path(str(value)).resolve(), root):
            return (f"{'.'.join(key)} {value} lies inside dataset.root {config['dataset']['root']}: the workflow "
                    "never writes into the dataset; point it outside (e.g. under results/)")
    return None
