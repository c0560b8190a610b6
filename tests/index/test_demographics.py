"""Demographics are parsed once, at the index stage, into the vocabulary the training stage reads."""

from __future__ import annotations

from pathlib import Path

import pytest
from lumiere_fixture import write_lumiere_fixture

from ranoflow import lumiere
from ranoflow.index.demographics import NORMALISERS, read_demographics
from ranoflow.train import clinical
from ranoflow.vocabulary import CATEGORIES, DEMOGRAPHIC_FIELDS


def test_fixture_values_normalised(tmp_path: Path) -> None:
    tree = write_lumiere_fixture(tmp_path)
    table = read_demographics(tree / lumiere.DEMOGRAPHICS_CSV).set_index("patient")
    assert table.loc["Patient-001"].to_dict() == {"age": "63.5", "sex": "male", "idh": "wildtype", "mgmt": "methylated"}
    assert table.loc["Patient-002"].to_dict() == {"age": "45", "sex": "female", "idh": "mutant", "mgmt": "unmethylated"}
    assert table.loc["Patient-004"].to_dict() == {"age": "", "sex": "", "idh": "", "mgmt": ""}
    assert "Patient-003" not in table.index


@pytest.mark.parametrize(
    ("field", "raw", "normalised"),
    [
        ("sex", " M ", "male"),
        ("sex", "Woman", "female"),
        ("idh", "WT", "wildtype"),
        ("idh", "IDH wild-type", "wildtype"),
        ("idh", "Mutated", "mutant"),
        ("mgmt", "not methylated", "unmethylated"),
        ("mgmt", "Unmethylated", "unmethylated"),
        ("mgmt", "methylated", "methylated"),
        ("age", "63,5", "63.5"),
        ("age", "na", ""),
        ("idh", "not available", ""),
    ],
)
def test_spellings(field: str, raw: str, normalised: str) -> None:
    assert NORMALISERS[field](raw) == normalised


def test_every_normalised_value_is_a_fixed_point_the_training_stage_accepts() -> None:
    assert tuple(NORMALISERS) == DEMOGRAPHIC_FIELDS
    for field, values in CATEGORIES.items():
        for value in values:
            assert NORMALISERS[field](value) == value
            assert clinical.encode({field: value}, [field]).sum() == 1.0


def test_unrecognised_value_is_unknown_and_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / lumiere.DEMOGRAPHICS_CSV
    header = ",".join(lumiere.DEMOGRAPHICS_HEADER)
    path.write_text(f"{header}\nPatient-001,100,X,61,perhaps,NGS,methylated,20\n")
    with caplog.at_level("WARNING", logger="ranoflow.index.demographics"):
        table = read_demographics(path)
    assert table.loc[0, ["sex", "idh", "mgmt"]].tolist() == ["", "", "methylated"]
    assert "'X'" in caplog.text and "'perhaps'" in caplog.text and lumiere.DEMOGRAPHICS_CSV in caplog.text
