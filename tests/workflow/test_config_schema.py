"""Config schema: shipped configs validate, defaults are filled, bad keys and types fail naming the key."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

REPO = Path(__file__).resolve().parents[2]
SCHEMA = str(REPO / "workflow" / "schemas" / "config.schema.yaml")
MINIMAL = {"dataset": {"source": "lumiere", "root": "/data/LUMIERE"}}


def validated(config: dict[str, Any]) -> dict[str, Any]:
    config = copy.deepcopy(config)
    validate(config, SCHEMA, set_default=True)
    return config


@pytest.mark.parametrize("path", sorted((REPO / "config").glob("*.yaml")), ids=lambda path: path.name)
def test_shipped_configs_validate(path: Path) -> None:
    config = yaml.safe_load(path.read_text())
    config.setdefault("dataset", {}).setdefault("root", "/data/LUMIERE")  # the one key a user must set
    validated(config)


def test_defaults_filled() -> None:
    config = validated(MINIMAL)
    assert config["index"] == {
        "reference": "previous",
        "modalities": ["CT1", "T1", "T2", "FLAIR"],
        "exclude_less_than_3_months": False,
    }
    assert config["folds"] == {"protocol": "patient", "k": 5, "seed": 42, "val_fraction": 0.2, "strict": False}
    assert config["dataset"]["ratings_csv"] == "LUMIERE-ExpertRating-v202211.csv"


def with_setting(section: str, key: str, value: Any) -> dict[str, Any]:
    config = copy.deepcopy(MINIMAL)
    config.setdefault(section, {})[key] = value
    return config


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ({**MINIMAL, "foldz": {"k": 3}}, "'foldz' was unexpected"),
        (with_setting("index", "referense", "previous"), "'referense' was unexpected"),
        (with_setting("folds", "kk", 3), "'kk' was unexpected"),
        (with_setting("dataset", "rooot", "/data"), "'rooot' was unexpected"),
        (with_setting("folds", "k", "five"), "['folds']['k']"),
        (with_setting("folds", "k", 1), "['folds']['k']"),
        (with_setting("folds", "val_fraction", 0.9), "['folds']['val_fraction']"),
        (with_setting("folds", "protocol", "nested"), "['folds']['protocol']"),
        (with_setting("index", "reference", "nearest"), "['index']['reference']"),
        (with_setting("index", "modalities", ["DWI"]), "['index']['modalities']"),
        (with_setting("index", "exclude_less_than_3_months", "yes"), "['index']['exclude_less_than_3_months']"),
        ({"dataset": {"source": "lumiere"}}, "'root' is a required property"),
    ],
)
def test_bad_config_fails_naming_the_key(config: dict[str, Any], named: str) -> None:
    with pytest.raises(WorkflowError) as error:
        validated(config)
    assert named in str(error.value)


@pytest.mark.slow
def test_snakemake_dry_run_fails_naming_an_unknown_key(tmp_path: Path) -> None:
    config = with_setting("index", "referense", "bratpro")
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path)]
    result = subprocess.run(
        [*command, "--configfile", str(tmp_path / "bad.yaml"), "-n"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "'referense' was unexpected" in result.stderr + result.stdout
