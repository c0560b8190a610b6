"""Cross-validation folds of the scorable pairs, written once as a file (like nnU-Net's splits_final.json).

- `patient` (default): StratifiedGroupKFold by patient for the test folds, then a patient-wise stratified
  validation split of each training part for model selection. No patient is in two of train/val/test.
- `paper` (Matoso et al. 2025): StratifiedKFold on pairs without grouping, the test fold doubles as the
  validation set. Leaky on two counts; kept so both protocols can be reported side by side.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupShuffleSplit, StratifiedGroupKFold, StratifiedKFold

from ranoflow.vocabulary import CLASSES

log = logging.getLogger(__name__)

Protocol = Literal["patient", "paper"]


class FoldError(ValueError):
    """The pairs cannot be split as configured."""


def _split_logged(splitter: Any, ids: np.ndarray, labels: np.ndarray, groups: np.ndarray | None) -> list:
    """splitter.split(...) as a list, with scikit-learn's warnings (e.g. a rare class) sent to the log."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        splits = list(splitter.split(ids, labels, groups))
    for warning in caught:
        log.warning("%s: %s", type(splitter).__name__, warning.message)
    return splits


def _outer_split(splitter: Any, ids: np.ndarray, labels: np.ndarray, groups: np.ndarray | None, k: int) -> list:
    """The test folds; scikit-learn's refusal (e.g. every class rarer than k) as one FoldError line."""
    try:
        return _split_logged(splitter, ids, labels, groups)
    except ValueError as error:
        counts = pd.Series(labels).value_counts().to_dict()
        raise FoldError(
            f"folds.k={k}: the pairs per class {counts} cannot be split into {k} stratified folds "
            f"({error}); lower folds.k"
        ) from error


def rare_class_warnings(labels: np.ndarray, groups: np.ndarray, k: int) -> list[str]:
    """Classes held by fewer patients (protocol paper: pairs) than folds: some test folds will lack them."""
    held = pd.DataFrame({"label": labels, "group": groups}).groupby("label")["group"].nunique()
    return [
        f"class {label} comes from {count} patient(s)/pair(s), fewer than folds.k={k}: some folds will lack it"
        for label, count in held.items()
        if count < k
    ]


def coverage_warnings(folds: list[dict], labels: pd.Series, groups: pd.Series) -> list[str]:
    """Per fold: a class of the cohort with no training pair (its loss weight would be 0), and a class with
    no validation pair although at least two patients of the fold's training part hold it.

    `labels` and `groups` are indexed by pair id.
    """
    cohort = [c for c in CLASSES if c in set(labels)]
    found = []
    for fold in folds:
        train, val = set(labels[fold["train"]]), set(labels[fold["val"]])
        part = fold["train"] + [i for i in fold["val"] if i not in set(fold["train"])]
        patients = groups[part].groupby(labels[part]).nunique()
        for label in cohort:
            if label not in train:
                found.append(f"fold {fold['fold']}: no {label} pair in the training split (its loss weight would be 0)")
            elif label not in val and patients.get(label, 0) >= 2:
                found.append(
                    f"fold {fold['fold']}: no {label} pair in the validation split although "
                    f"{patients[label]} patients of its training part hold {label} pairs"
                )
    return found


def cohort_problem(pairs: pd.DataFrame, protocol: str, k: int) -> str | None:
    """One line when folds.k exceeds what the cohort can fill (patients with scorable pairs, or pairs with
    protocol paper): every test fold needs at least one; None when k fits."""
    size, unit = (len(pairs), "scorable pairs") if protocol == "paper" else (
        pairs["patient"].nunique(), "patients with scorable pairs")
    if k <= size:
        return None
    fix = f"lower folds.k to at most {size}" if size >= 2 else "the cohort is too small to cross-validate"
    return f"folds.k = {k} is more than the cohort's {size} {unit} (index/pairs.tsv): {fix}"


def _validation_split(labels: np.ndarray, groups: np.ndarray, val_fraction: float, seed: int) -> np.ndarray:
    """Indices of a patient-wise validation subset of about val_fraction of the pairs."""
    n_groups = len(np.unique(groups))
    if n_groups < 2:
        raise FoldError(f"a training part holds {n_groups} patient(s): need at least 2 for a validation split")
    n_splits = min(max(2, round(1 / val_fraction)), n_groups)
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    try:
        _, val = _split_logged(splitter, labels, labels, groups)[0]
    except ValueError as error:  # every class rarer than n_splits: fall back to an unstratified split
        log.warning("stratified validation split impossible (%s): GroupShuffleSplit instead", error)
        splitter = GroupShuffleSplit(n_splits=1, test_size=val_fraction, random_state=seed)
        _, val = next(splitter.split(labels, labels, groups))
    return val


def make_folds(
    pairs: pd.DataFrame,
    protocol: Protocol = "patient",
    k: int = 5,
    seed: int = 42,
    val_fraction: float = 0.2,
    strict: bool = False,
) -> dict[str, Any]:
    """folds.json content: {"protocol", "leaky", "k", "seed", "val_fraction", "n_pairs", "n_patients",
    "warnings", "folds": [{fold, train, val, test}]}.

    Folds that cannot train every class (see coverage_warnings) are logged and listed under "warnings";
    with `strict` they raise FoldError instead.
    """
    pairs = pairs.sort_values("id").reset_index(drop=True)
    ids = pairs["id"].to_numpy()
    labels = pairs["label"].to_numpy()
    patients = pairs["patient"].to_numpy()
    if pairs["id"].duplicated().any():
        raise FoldError("pair ids are not unique")
    if protocol in ("patient", "paper") and cohort_problem(pairs, protocol, k):
        raise FoldError(cohort_problem(pairs, protocol, k))
    if protocol == "patient":
        splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
        outer = _outer_split(splitter, ids, labels, patients, k)
    elif protocol == "paper":
        log.warning(
            "protocol 'paper' is LEAKY: pairs of one patient sit in training and test, and the test fold "
            "also selects the model (validation == test); report it only beside the 'patient' protocol"
        )
        outer = _outer_split(StratifiedKFold(n_splits=k, shuffle=True, random_state=seed), ids, labels, None, k)
    else:
        raise FoldError(f"unknown protocol {protocol!r} (patient or paper)")

    folds = []
    for fold, (train, test) in enumerate(outer):
        if protocol == "patient":
            val = train[_validation_split(labels[train], patients[train], val_fraction, seed + fold)]
            train = np.setdiff1d(train, val)
        else:
            val = test
        folds.append(
            {
                "fold": fold,
                "train": sorted(ids[train].tolist()),
                "val": sorted(ids[val].tolist()),
                "test": sorted(ids[test].tolist()),
            }
        )
        log.info(
            "fold %d: train %d, val %d, test %d pairs; test labels %s",
            fold,
            len(train),
            len(val),
            len(test),
            {label: int(count) for label, count in pd.Series(labels[test]).value_counts().sort_index().items()},
        )
    by_id = pairs.set_index("id")
    groups = by_id["patient"] if protocol == "patient" else by_id.index.to_series()
    problems = rare_class_warnings(labels, groups.to_numpy(), k) + coverage_warnings(folds, by_id["label"], groups)
    if problems and strict:
        raise FoldError(f"folds.strict: {'; '.join(problems)}")
    for problem in problems:
        log.warning("%s", problem)
    return {
        "protocol": protocol,
        "leaky": protocol == "paper",
        "k": k,
        "seed": seed,
        "val_fraction": val_fraction if protocol == "patient" else None,
        "n_pairs": len(ids),
        "n_patients": len(np.unique(patients)),
        "warnings": problems,
        "folds": folds,
    }
