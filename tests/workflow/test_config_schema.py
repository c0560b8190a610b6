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

from ranoflow.config_check import (
    config_problem,
    config_sources,
    dataset_root_problem,
    demo_not_read,
    merged,
    settings_problem,
    typed_overrides,
    yaml_problem,
)

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
        "exclude_rationales": [],
        "pair_across_gaps": False,
        "allow_sparse_experiments": False,
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


def sources_of(*named: tuple[str, dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    return list(named)


@pytest.mark.parametrize(
    ("config", "line"),
    [
        (with_setting("index", "referense", "previous"),
         "unknown config key index.referense (in my_site.yaml); allowed under index: "
         "allow_sparse_experiments, exclude_less_than_3_months, exclude_rationales, modalities, pair_across_gaps, "
         "reference"),
        ({**MINIMAL, "foldz": {"k": 3}}, "unknown config key foldz (in my_site.yaml); allowed under (top level): "),
        (with_setting("folds", "k", "five"), "config key folds.k = 'five' (in my_site.yaml) is not allowed: "
                                             "expected integer >= 2"),
        (with_setting("folds", "protocol", "nested"), "expected one of patient, paper"),
        ({"dataset": {"source": "lumiere"}}, "config key dataset.root is missing (LUMIERE root folder"),
        # enums and types behind a $ref, in arrays and in alternatives say what is allowed too
        ({**MINIMAL, "experiments": {"a": {"modalities": ["T1"], "input": "stack", "architecture": "unet"}}},
         "config key experiments.a.architecture = 'unet' (in my_site.yaml) is not allowed: expected one of "
         "densenet121, densenet169, densenet201, densenet264, resnet10, resnet18, resnet50, efficientnet-b0, vit"),
        ({**MINIMAL, "experiments": {"a": {"modalities": ["T1"], "input": "stacked", "architecture": "vit"}}},
         "config key experiments.a.input = 'stacked' (in my_site.yaml) is not allowed: "
         "expected one of stack, subtract, stack_diff"),
        ({**MINIMAL, "experiments": {"a": {"modalities": "T1", "input": "stack", "architecture": "vit"}}},
         "expected array of (one of CT1, T1, T2, FLAIR)"),
        ({**MINIMAL, "experiments": {"a": {"modalities": ["T1"], "input": "stack", "architecture": "vit",
                                           "clinical": "yes"}}},
         "expected boolean or array of (one of age, sex, idh, mgmt, weeks_between, less_than_3_months)"),
        (with_setting("training", "balance", "weights"), "expected one of sampler, loss, both, none"),
        (with_setting("training", "norm", "layer"), "expected one of batch, instance, group, null"),
        ({**MINIMAL, "resources": {"train": {"gpu": -1}}}, "resources.train.gpu = -1 (in my_site.yaml) is not "
                                                           "allowed: expected integer >= 0"),
    ],
)
def test_config_problem_is_one_line_with_key_allowed_values_and_file(config: dict[str, Any], line: str) -> None:
    schema = yaml.safe_load(Path(SCHEMA).read_text())
    problem = config_problem(config, schema, sources_of(("config/lumiere.yaml", MINIMAL), ("my_site.yaml", config)))
    assert line in problem
    assert "\n" not in problem


def test_config_problem_names_the_file_that_set_the_key() -> None:
    schema = yaml.safe_load(Path(SCHEMA).read_text())
    base = with_setting("folds", "k", "five")
    problem = config_problem(base, schema, sources_of(("config/lumiere.yaml", base), ("my_site.yaml", MINIMAL)))
    assert "(in config/lumiere.yaml)" in problem
    assert config_problem(validated(MINIMAL), schema, sources_of(("a.yaml", MINIMAL))) is None


def test_nested_command_line_values_are_read_as_yaml() -> None:
    # what Snakemake hands over for --config "training={max_epochs: 2, lr: 1.0e-3, amp: true, image_size: [32, 32, 32]}"
    given = {"training": {"max_epochs": "2", "lr": "1.0e-3", "amp": "true", "image_size": ["32", "32", "32"],
                          "pair_mask": "intersection"}}
    assert typed_overrides(given) == {"training": {"max_epochs": 2, "lr": 1.0e-3, "amp": True,
                                                   "image_size": [32, 32, 32], "pair_mask": "intersection"}}
    validated({**MINIMAL, **typed_overrides(given)})


def test_dataset_root_must_be_a_lumiere_folder(tmp_path: Path) -> None:
    dataset = validated({"dataset": {"source": "lumiere", "root": "/path/to/LUMIERE"}})["dataset"]
    assert dataset_root_problem(dataset, "config/lumiere.yaml").startswith(
        "dataset.root is still the placeholder '/path/to/LUMIERE': set dataset.root to your downloaded LUMIERE "
        "folder in config/lumiere.yaml")
    dataset["root"] = str(tmp_path / "nowhere")
    assert "is not a folder" in dataset_root_problem(dataset, "my_site.yaml")
    dataset["root"] = str(tmp_path)
    assert "has no Imaging or LUMIERE-ExpertRating-v202211.csv" in dataset_root_problem(dataset, "my_site.yaml")
    (tmp_path / "Imaging").mkdir()
    (tmp_path / "LUMIERE-ExpertRating-v202211.csv").write_text("Patient,Date\n")
    assert dataset_root_problem(dataset, "my_site.yaml") is None


BROKEN_YAML = "dataset:\n  root: /data/LUMIERE\n  source: [lumiere\nfolds: {k: 3}\n"
BROKEN_AT = "not valid YAML at line 4, column 6: while parsing a flow sequence: expected ',' or ']', but got ':'"


def test_a_yaml_error_names_the_file_line_and_column(tmp_path: Path) -> None:
    (tmp_path / "my_site.yaml").write_text(BROKEN_YAML)
    assert yaml_problem(tmp_path / "my_site.yaml") == f"{tmp_path / 'my_site.yaml'}: {BROKEN_AT}"
    assert yaml_problem(REPO / "config" / "lumiere.yaml") is None
    checked = subprocess.run([sys.executable, "-m", "ranoflow.config_check", "my_site.yaml"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=60)
    assert checked.returncode == 1 and checked.stdout == f"my_site.yaml: {BROKEN_AT}\n" and not checked.stderr


@pytest.mark.slow
def test_snakemake_names_a_yaml_error_of_a_config_file_in_one_line(tmp_path: Path) -> None:
    """config/config.yaml (the Snakefile's `configfile:`) is checked by the Snakefile: file, line and column.
    A --configfile is read by Snakemake before the Snakefile: its one line names neither file nor line, so the
    docs point to `python -m ranoflow.config_check` (tested above)."""
    (tmp_path / "config").mkdir()
    for path in (REPO / "config").glob("*.yaml"):
        (tmp_path / "config" / path.name).write_text(path.read_text())
    (tmp_path / "config" / "config.yaml").write_text(BROKEN_YAML)
    result = dry_run(tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 1 and "Traceback" not in output
    assert f"config/config.yaml: {BROKEN_AT}" in output.splitlines()
    (tmp_path / "config" / "config.yaml").write_text((REPO / "config" / "config.yaml").read_text())
    (tmp_path / "my_site.yaml").write_text(BROKEN_YAML)
    result = dry_run(tmp_path, "--configfile", "config/lumiere.yaml", "my_site.yaml")
    output = result.stdout + result.stderr
    assert result.returncode == 1 and "Traceback" not in output
    assert "Config file is not valid JSON or YAML" in output


def dry_run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """`snakemake -n` of the repository's workflow with `args`, run from a copy's root as users do."""
    for name in ("Snakefile", "pyproject.toml", "config", "workflow", "profiles"):
        if not (tmp_path / name).exists():
            (tmp_path / name).symlink_to(REPO / name)
    return subprocess.run([sys.executable, "-m", "snakemake", "-n", *args], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.slow
def test_snakemake_names_an_unknown_key_in_one_line_without_the_schema(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump({"index": {"referense": "bratpro"}}))
    result = dry_run(tmp_path, "--configfile", "config/config.yaml", "bad.yaml")
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert ("unknown config key index.referense (in bad.yaml); allowed under index: allow_sparse_experiments, "
            "exclude_less_than_3_months, exclude_rationales, modalities, pair_across_gaps, reference") in output
    assert "Failed validating" not in output and len(output.splitlines()) < 6, output


@pytest.mark.slow
def test_command_line_overrides_validate_and_reach_the_rules(tmp_path: Path) -> None:
    result = dry_run(tmp_path, "--config", "training={max_epochs: 2, lr: 1.0e-3}", "--printshellcmds")
    assert result.returncode == 0, result.stderr
    bad = dry_run(tmp_path, "--config", "training={max_epochs: two}")
    assert "config key training.max_epochs = 'two' (in --config) is not allowed: expected integer" in bad.stdout + bad.stderr


@pytest.mark.slow
def test_lumiere_config_with_its_placeholder_root_says_what_to_set(tmp_path: Path) -> None:
    result = dry_run(tmp_path, "--configfile", "config/lumiere.yaml")
    assert result.returncode != 0
    assert ("config/config.yaml (the demo) is not read: the config comes from config/lumiere.yaml only."
            in result.stdout + result.stderr)
    assert ("dataset.root is still the placeholder '/path/to/LUMIERE': set dataset.root to your downloaded "
            "LUMIERE folder in config/lumiere.yaml") in result.stdout + result.stderr
    assert "MissingInputException" not in result.stdout + result.stderr


def test_a_dataset_template_cannot_serve_the_atlas_skull_strip() -> None:
    config = validated({"dataset": {"source": "synthetic", "root": "results/demo/LUMIERE"},
                        "preprocessing": {"skull_strip": {"method": "atlas"}, "template": {"source": "dataset"}}})
    problem = settings_problem(config, [("my_site.yaml", config)])
    assert problem.startswith("preprocessing.skull_strip.method atlas needs a whole-head template: set "
                              "preprocessing.template.source to files")


def test_configfile_runs_leave_the_demo_out_and_say_so(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text(yaml.safe_dump({"folds": {"k": 3}}))
    demo = ("config/config.yaml", {"folds": {"k": 2, "seed": 1}, "dataset": {"source": "synthetic"}})
    sources = config_sources([site], {"folds": {"seed": "7"}}, demo)
    assert merged(sources) == {"folds": {"k": 3, "seed": 7}}
    assert demo_not_read(sources, "config/config.yaml") == (
        f"config/config.yaml (the demo) is not read: the config comes from {site} only and --config.")
    assert merged(config_sources([], {}, demo)) == demo[1]
    assert demo_not_read(config_sources([], {}, demo), "config/config.yaml") is None
