"""Clinical covariates as a fixed-length vector, with an explicit indicator for every missing value.

Values come from pairs.tsv as the index stage normalised them (ranoflow.index.demographics): numbers as
text, categories as one of `vocabulary.CATEGORIES`, '' when unknown. Scaling uses fixed constants (not
statistics of the data) so that no information leaks between folds.
"""

from __future__ import annotations

import numpy as np

from ranoflow.vocabulary import CATEGORIES, CLINICAL_FIELDS, FLAG_FIELDS

AGE_SCALE = 100.0
WEEKS_SCALE = 52.0


def _text(value: object) -> str:
    return "" if value is None else str(value).strip()


def _category(field: str, value: object) -> str | None:
    """The category of a normalised value, None when unknown; anything else is an error."""
    text = _text(value)
    if not text:
        return None
    if text not in CATEGORIES[field]:
        raise ValueError(
            f"clinical field {field!r}: {value!r} is not a normalised value {CATEGORIES[field]} "
            "(pairs.tsv is written by the index stage; rebuild it)"
        )
    return text


def _number(field: str, value: object) -> float | None:
    text = _text(value)
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"clinical field {field!r}: {value!r} is not a number") from None


def _check(fields: list[str]) -> None:
    unknown = [field for field in fields if field not in CLINICAL_FIELDS]
    if unknown:
        raise ValueError(f"unknown clinical field(s) {unknown}; choose from {list(CLINICAL_FIELDS)}")


def feature_names(fields: list[str]) -> list[str]:
    """Names of the encoded columns, in order."""
    _check(fields)
    names: list[str] = []
    for field in fields:
        names += [f"{field}_{c}" for c in CATEGORIES[field]] if field in CATEGORIES else [field]
        names.append(f"{field}_missing")
    return names


def encode(record: dict, fields: list[str]) -> np.ndarray:
    """One pair's clinical vector (float32, len(feature_names(fields))).

    Numbers are scaled (age / 100 years, weeks_between / 52), flags (less_than_3_months) stay 0/1; categories
    are one-hot. Every field is
    followed by a missing indicator, and a missing field's value columns are 0.
    """
    _check(fields)
    out: list[float] = []
    for field in fields:
        if field in CATEGORIES:
            category = _category(field, record.get(field))
            out += [float(category == c) for c in CATEGORIES[field]]
            out.append(float(category is None))
        else:
            number = _number(field, record.get(field))
            scale = AGE_SCALE if field == "age" else 1.0 if field in FLAG_FIELDS else WEEKS_SCALE
            out.append(0.0 if number is None else number / scale)
            out.append(float(number is None))
    return np.asarray(out, dtype=np.float32)
