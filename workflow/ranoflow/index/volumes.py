"""Enhancing-tumour volume of every study, measured once from its automated segmentation.

Read by the pairs rule (the nadir: the study with the smallest enhancing tumour since baseline) and by the
rule-based baselines (the sizes of each pair's baseline and nadir). Never from a rating.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from ranoflow import lumiere
from ranoflow.segmentation import load_segmentation, measured_enhancing_volume, volume_mm3

log = logging.getLogger(__name__)

# studies.tsv column holding each source's segmentation (the demo generator writes DeepBraTumIA-like files).
SEGMENTATION_COLUMN: dict[str, str] = {
    "deepbratumia": "seg_deepbratumia",
    "hdglio": "seg_hdglio",
    "synthetic": "seg_deepbratumia",
}
VOLUME_COLUMNS = ["patient", "study", "segmentation", "enhancing_mm3"]


def enhancing_volume(path: str, source: str, volumes: str = "mask") -> float:
    """Enhancing volume (mm³) of one segmentation: counted voxels ('mask') or DeepBraTumIA's JSON ('measured')."""
    if volumes == "measured":
        if source == "hdglio":
            raise ValueError("volumes: measured reads DeepBraTumIA's measured_volumes_in_mm3.json; HD-GLIO-AUTO has none")
        return measured_enhancing_volume(Path(path).parent / Path(lumiere.DBT_VOLUMES).name)
    segmentation = load_segmentation(path, source)
    return volume_mm3(segmentation.enhancing, segmentation.zooms)


def study_volumes(studies: pd.DataFrame, source: str, volumes: str = "mask") -> pd.DataFrame:
    """One row per study: its segmentation path and enhancing volume (NaN where it has no segmentation)."""
    column = SEGMENTATION_COLUMN[source]
    rows = []
    for study in studies.itertuples(index=False):
        path = str(getattr(study, column) or "")
        volume = enhancing_volume(path, source, volumes) if path else float("nan")
        rows.append({"patient": study.patient, "study": study.study, "segmentation": path, "enhancing_mm3": volume})
    table = pd.DataFrame(rows, columns=VOLUME_COLUMNS)
    log.info("%d studies, %d with a %s segmentation", len(table), table["enhancing_mm3"].notna().sum(), source)
    return table


def volume_lookup(table: pd.DataFrame | None) -> dict[tuple[str, str], float]:
    """(patient, study) -> enhancing volume, for the studies that have one (study_volumes.tsv read as text)."""
    if table is None:
        return {}
    values = pd.to_numeric(table["enhancing_mm3"], errors="coerce")
    return {
        (patient, study): float(value)
        for patient, study, value in zip(table["patient"], table["study"], values)
        if pd.notna(value)
    }
