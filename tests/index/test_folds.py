"""Folds: every pair tested exactly once; in the patient protocol no patient crosses train/val/test."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from lumiere_fixture import write_lumiere_fixture

from ranoflow import lumiere
from ranoflow.index.demographics import read_demographics
from ranoflow.index.folds import FoldError, cohort_problem, make_folds
from ranoflow.index.pairs import build_pairs, pair_id
from ranoflow.index.studies import build_index


def lumiere_sized_pairs(seed: int, n_patients: int = 91, n_studies: int = 638) -> pd.DataFrame:
    """A random pairs table the size of LUMIERE: 91 patients, about 638 studies, imbalanced labels."""
    rng = np.random.default_rng(seed)
    per_patient = rng.multinomial(n_studies - 2 * n_patients, np.full(n_patients, 1 / n_patients)) + 2
    rows = []
    for number, count in enumerate(per_patient, start=1):
        patient = lumiere.patient_name(number)
        weeks = np.sort(rng.choice(np.arange(1, 300), size=count, replace=False))
        labels = rng.choice(["CR", "PR", "SD", "PD"], size=count - 1, p=[0.08, 0.12, 0.35, 0.45])
        for previous, current, label in zip(weeks[:-1], weeks[1:], labels):
            current_name, previous_name = lumiere.study_name(int(current)), lumiere.study_name(int(previous))
            rows.append(
                {
                    "id": pair_id(patient, current_name, previous_name),
                    "patient": patient,
                    "current": current_name,
                    "previous": previous_name,
                    "label": label,
                }
            )
    return pd.DataFrame(rows)


def assert_covers_every_pair_once(folds: dict, pairs: pd.DataFrame) -> None:
    tested = [pair for fold in folds["folds"] for pair in fold["test"]]
    assert sorted(tested) == sorted(pairs["id"])
    for fold in folds["folds"]:
        parts = [set(fold["train"]), set(fold["val"]), set(fold["test"])]
        assert parts[0] | parts[1] | parts[2] == set(pairs["id"])
        if not folds["leaky"]:
            assert sum(map(len, parts)) == len(pairs)


def assert_no_patient_crosses(folds: dict, pairs: pd.DataFrame) -> None:
    patient_of = dict(zip(pairs["id"], pairs["patient"]))
    for fold in folds["folds"]:
        train, val, test = ({patient_of[pair] for pair in fold[part]} for part in ("train", "val", "test"))
        assert val and train and test, f"fold {fold['fold']}: an empty part"
        assert not train & val, f"fold {fold['fold']}: patients in train and val: {train & val}"
        assert not train & test, f"fold {fold['fold']}: patients in train and test: {train & test}"
        assert not val & test, f"fold {fold['fold']}: patients in val and test: {val & test}"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_patient_protocol_on_lumiere_sized_index(seed: int) -> None:
    pairs = lumiere_sized_pairs(seed)
    assert pairs["patient"].nunique() == 91 and len(pairs) == 638 - 91
    folds = make_folds(pairs, "patient", k=5, seed=seed, val_fraction=0.2)
    assert folds["protocol"] == "patient" and folds["leaky"] is False and len(folds["folds"]) == 5
    assert_covers_every_pair_once(folds, pairs)
    assert_no_patient_crosses(folds, pairs)
    for fold in folds["folds"]:
        assert 0.1 < len(fold["val"]) / (len(fold["train"]) + len(fold["val"])) < 0.3
        assert set(pairs.set_index("id").loc[fold["test"], "label"]) == {"CR", "PR", "SD", "PD"}


def test_paper_protocol_is_leaky() -> None:
    pairs = lumiere_sized_pairs(0)
    folds = make_folds(pairs, "paper", k=5, seed=42)
    assert folds["protocol"] == "paper" and folds["leaky"] is True
    assert all(fold["val"] == fold["test"] for fold in folds["folds"])
    assert_covers_every_pair_once(folds, pairs)
    patient_of = dict(zip(pairs["id"], pairs["patient"]))
    crossing = [
        {patient_of[p] for p in fold["train"]} & {patient_of[p] for p in fold["test"]} for fold in folds["folds"]
    ]
    assert any(crossing), "the paper protocol should let patients cross train and test"


def test_paper_protocol_logs_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="ranoflow.index.folds"):
        make_folds(lumiere_sized_pairs(0), "paper", k=5, seed=42)
    assert "LEAKY" in caplog.text


def test_deterministic_and_seeded() -> None:
    pairs = lumiere_sized_pairs(3)
    first = make_folds(pairs, "patient", k=5, seed=7)
    assert make_folds(pairs.sample(frac=1, random_state=1), "patient", k=5, seed=7) == first
    assert make_folds(pairs, "patient", k=5, seed=8)["folds"] != first["folds"]


def test_on_the_fixture_tree(tmp_path: Path) -> None:
    root = write_lumiere_fixture(tmp_path, n_plain=6)
    index = build_index(root, root / lumiere.RATINGS_CSV, root / lumiere.COMPLETENESS_CSV)
    pairs, _ = build_pairs(index.studies, index.orphans, read_demographics(root / lumiere.DEMOGRAPHICS_CSV))
    folds = make_folds(pairs, "patient", k=3, seed=42, val_fraction=0.2)
    assert_covers_every_pair_once(folds, pairs)
    assert_no_patient_crosses(folds, pairs)


def test_too_few_patients() -> None:
    pairs = lumiere_sized_pairs(0, n_patients=3, n_studies=12)
    with pytest.raises(FoldError) as error:
        make_folds(pairs, "patient", k=5)
    assert str(error.value) == ("folds.k = 5 is more than the cohort's 3 patients with scorable pairs "
                                "(index/pairs.tsv): lower folds.k to at most 3")
    assert cohort_problem(pairs, "patient", 3) is None
    assert cohort_problem(pairs, "paper", len(pairs) + 1).startswith(f"folds.k = {len(pairs) + 1} is more than "
                                                                    f"the cohort's {len(pairs)} scorable pairs")
    with pytest.raises(FoldError, match="protocol"):
        make_folds(pairs, "nested", k=2)  # type: ignore[arg-type]


def one_patient_class(pairs: pd.DataFrame, label: str = "CR") -> pd.DataFrame:
    """`pairs` with `label` held by the pairs of one patient only (and no other pair)."""
    pairs = pairs.assign(label=pairs["label"].replace(label, "SD"))
    first = pairs["patient"] == pairs["patient"].iloc[0]
    return pairs.assign(label=pairs["label"].where(~first, label))


def test_a_fold_whose_training_split_lacks_a_class_is_reported_or_refused(caplog) -> None:
    pairs = one_patient_class(lumiere_sized_pairs(1, n_patients=20, n_studies=120))
    with caplog.at_level("WARNING"):
        folds = make_folds(pairs, "patient", k=4, seed=0)
    lacking = [f["fold"] for f in folds["folds"] if not {"CR"} & set(pairs.set_index("id").loc[f["train"], "label"])]
    assert len(lacking) == 1
    expected = f"fold {lacking[0]}: no CR pair in the training split"
    assert any(w.startswith(expected) for w in folds["warnings"]), folds["warnings"]
    assert expected in caplog.text
    with pytest.raises(FoldError, match=f"folds.strict: .*{expected}"):
        make_folds(pairs, "patient", k=4, seed=0, strict=True)


def test_folds_that_hold_every_class_carry_no_warning() -> None:
    folds = make_folds(lumiere_sized_pairs(3), "patient", k=5, seed=7)
    assert folds["warnings"] == []


def test_classes_rarer_than_the_folds_fail_in_one_clear_line() -> None:
    pairs = lumiere_sized_pairs(0, n_patients=4, n_studies=12).head(8)
    pairs = pairs.assign(label=["CR", "CR", "PR", "PR", "SD", "SD", "PD", "PD"])
    with pytest.raises(FoldError, match=r"folds.k=5: the pairs per class .* cannot be split .* lower folds.k"):
        make_folds(pairs, "paper", k=5)
