"""LUMIERE-Demographics_Pathology.csv read once and normalised to the vocabulary's values.

Age becomes a plain number, sex/IDH/MGMT one of `vocabulary.CATEGORIES` and '' whenever the value is
unknown. pairs.tsv carries these values, so the training stage reads them without parsing spellings.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from ranoflow.index.studies import read_table
from ranoflow.vocabulary import DEMOGRAPHIC_FIELDS

log = logging.getLogger(__name__)

# Short header of the released file -> field name.
DEMOGRAPHICS_COLUMNS = {
    "Patient": "patient",
    "Age at surgery": "age",
    "Sex": "sex",
    "IDH": "idh",
    "MGMT qualitative": "mgmt",
}
UNKNOWN_VALUES = {"", "na", "n/a", "nan", "none", "unknown", "not available", "-", "?"}


def _known(value: str) -> str:
    """The stripped value, '' when it spells 'unknown'."""
    value = value.strip()
    return "" if value.lower() in UNKNOWN_VALUES else value


def normalise_age(value: str) -> str:
    """Age in years as a plain number ('63', '63.5'; a decimal comma is accepted), '' when unknown."""
    number = pd.to_numeric(_known(value).replace(",", "."), errors="coerce")
    return "" if pd.isna(number) else f"{float(number):g}"


def normalise_sex(value: str) -> str:
    """'male' / 'female', '' when unknown or unrecognised."""
    text = _known(value).lower()
    if text in {"m", "male", "man"}:
        return "male"
    if text in {"f", "female", "woman"}:
        return "female"
    return ""


def normalise_idh(value: str) -> str:
    """'wildtype' / 'mutant', '' when unknown or unrecognised."""
    text = _known(value).lower()
    if not text:
        return ""
    if text in {"wt", "idh wt", "negative"} or "wild" in text:
        return "wildtype"
    if "mut" in text or text in {"positive", "idh1", "idh2"}:
        return "mutant"
    return ""


def normalise_mgmt(value: str) -> str:
    """'methylated' / 'unmethylated', '' when unknown or unrecognised."""
    text = _known(value).lower()
    if not text:
        return ""
    if re.search(r"\b(un|not|non)", text) or text in {"negative", "no"}:
        return "unmethylated"
    if "methyl" in text or text in {"positive", "yes"}:
        return "methylated"
    return ""


NORMALISERS: dict[str, Callable[[str], str]] = dict(
    zip(DEMOGRAPHIC_FIELDS, (normalise_age, normalise_sex, normalise_idh, normalise_mgmt), strict=True)
)


def read_demographics(path: str | Path) -> pd.DataFrame:
    """patient, age, sex, idh, mgmt as normalised text ('' when unknown); unrecognised values are logged."""
    table = read_table(path, DEMOGRAPHICS_COLUMNS).drop_duplicates("patient").reset_index(drop=True)
    for field, normalise in NORMALISERS.items():
        normalised = table[field].map(normalise)
        unrecognised = (normalised == "") & (table[field].map(_known) != "")
        for value in sorted(table.loc[unrecognised, field].unique()):
            log.warning("%s: %s value %r not recognised, counted as unknown", path, field, value)
        table[field] = normalised
    return table
