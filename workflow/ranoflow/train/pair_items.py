"""The pair -> study join: each scorable pair of pairs.tsv with its preprocessed studies of manifest.tsv
(the current study and every reference study the experiment reads).

Training and explanation both build their inputs from these items, so a pair is read the same way
wherever a network sees it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from ranoflow.checksum import study_checksum
from ranoflow.train import clinical
from ranoflow.train.experiments import canonical_modalities, canonical_references
from ranoflow.vocabulary import CLASSES

USABLE_STATUS = {"ok", "flagged"}


def sides(references: Sequence[str] | None = None) -> list[str]:
    """The studies of an item in channel order: `current`, then each reference (default: `previous`)."""
    return ["current", *canonical_references(list(references or []))]


def image_key(side: str, modality: str) -> str:
    """Item key of one study's image, e.g. `current_T1`."""
    return f"{side}_{modality}"


def pair_items(
    pairs: pd.DataFrame,
    manifest: pd.DataFrame,
    ids: Sequence[str],
    modalities: list[str],
    clinical_fields: list[str],
    use_flagged: bool = True,
    references: Sequence[str] | None = None,
) -> tuple[list[dict], pd.DataFrame]:
    """Dataset items for the pairs `ids`, and the pairs left out (id, reason).

    An item holds the pair (id, patient, label index, clinical vector), and per side (`current` and each
    of `references`, default `previous`; a side's study is the pairs.tsv column of that name) the study
    name (`<side>_study`), its preprocessed directory (`<side>_dir`), the image of every needed modality
    (`<side>_<modality>`), the brain mask (`<side>_mask`) and the checksum of the study's images
    (`<side>_checksum`, part of the item's disk-cache key).
    A pair is left out when it has no study for a reference (e.g. no nadir), when a study failed
    preprocessing (or is flagged and flagged studies are not used), or when a study lacks a modality the
    experiment needs.
    """
    mods = canonical_modalities(modalities)
    usable = USABLE_STATUS if use_flagged else {"ok"}
    studies = {(r["patient"], r["study"]): r for r in manifest.to_dict("records")}
    by_id = pairs.set_index("id", drop=False)
    items, left_out = [], []
    for pair_id in ids:
        row = by_id.loc[pair_id]
        # -1: an unrated pair (a new follow-up to predict)
        label = CLASSES.index(row["label"]) if row["label"] else -1
        item = {"id": pair_id, "patient": row["patient"], "label": label}
        reason = ""
        for side in sides(references):
            if not row.get(side, ""):
                reason = f"no {side} study" + ("" if side in row else f" (pairs.tsv has no {side} column)")
                break
            study = studies.get((row["patient"], row[side]))
            if study is None:
                reason = f"{side} study {row[side]} not in the preprocessing manifest"
                break
            if study["status"] not in usable:
                reason = f"{side} study {row[side]} preprocessing status {study['status']}"
                break
            directory = Path(study["dir"])
            missing = [m for m in mods if not (directory / f"{m}.nii.gz").is_file()]
            if missing:
                reason = f"{side} study {row[side]} lacks {','.join(missing)}"
                break
            item[f"{side}_study"] = row[side]
            item[f"{side}_dir"] = str(directory)
            for m in mods:
                item[image_key(side, m)] = str(directory / f"{m}.nii.gz")
            item[f"{side}_mask"] = str(directory / "brain_mask.nii.gz")
            # a manifest written before checksums existed: hash the images here
            item[f"{side}_checksum"] = study.get("checksum") or study_checksum(directory)
        if reason:
            left_out.append({"id": pair_id, "reason": reason})
            continue
        item["clinical"] = clinical.encode(row.to_dict(), clinical_fields)
        items.append(item)
    return items, pd.DataFrame(left_out, columns=["id", "reason"])
