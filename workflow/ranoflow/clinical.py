"""Clinical covariates as a fixed-length vector, with an explicit indicator for every missing value.

Scaling uses fixed constants (not statistics of the data) so that no information leaks between folds.
"""

from __future__ import annotations

import math

import numpy as np

AGE_SCALE = 100.0
WEEKS_SCALE = 52.0
MISSING_TOKENS = {"", "na", "n/a", "nan", "none", "unknown", "not available", "-", "?"}

# Categorical fields: the categories in column order; a matcher maps a normalised text to a category.
CATEGORIES = {
    "sex": ("male", "female"),
    "idh": ("mutant", "wildtype"),
    "mgmt": ("methylated", "unmethylated"),
}


def _is_missing(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return str(value).strip().lower() in MISSING_TOKENS


def _category(field: str, value: object) -> str | None:
    """The category of a categorical value, None when missing; unknown spellings are an error."""
    if _is_missing(value):
        return None
    text = str(value).strip().lower().replace("_", " ").replace("-", " ")
    if field == "sex":
        if text in ("m", "male", "man"):
            return "male"
        if text in ("f", "female", "woman"):
            return "female"
    elif field == "idh":
        if "wild" in text or text in ("wt", "idh wt", "negative"):
            return "wildtype"
        if "mut" in text or text in ("positive",):
            return "mutant"
    elif field == "mgmt":
        if text.startswith(("un", "not", "non", "no ")) or text in ("negative", "unmethylated"):
            return "unmethylated"
        if "methyl" in text or text == "positive":
            return "methylated"
    raise ValueError(f"clinical field {field!r}: cannot interpret {value!r} (categories: {CATEGORIES[field]})")


def _number(field: str, value: object) -> float | None:
    if _is_missing(value):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"clinical field {field!r}: {value!r} is not a number") from None


def feature_names(fields: list[str]) -> list[str]:
    """Names of the encoded columns, in order."""
    names: list[str] = []
    for field in fields:
        if field in CATEGORIES:
            names += [f"{field}_{c}" for c in CATEGORIES[field]]
        elif field in ("age", "weeks_between"):
            names.append(field)
        else:
            raise ValueError(f"unknown clinical field {field!r}")
        names.append(f"{field}_missing")
    return names


def encode(record: dict, fields: list[str]) -> np.ndarray:
    """One pair's clinical vector (float32, len(feature_names(fields))).

    Numbers are scaled (age / 100 years, weeks_between / 52); categories are one-hot. Every field is
    followed by a missing indicator, and a missing field's value columns are 0.
    """
    out: list[float] = []
    for field in fields:
        if field in CATEGORIES:
            category = _category(field, record.get(field))
            out += [float(category == c) for c in CATEGORIES[field]]
            out.append(float(category is None))
        else:
            number = _number(field, record.get(field))
            scale = AGE_SCALE if field == "age" else WEEKS_SCALE
            out.append(0.0 if number is None else number / scale)
            out.append(float(number is None))
    return np.asarray(out, dtype=np.float32)
