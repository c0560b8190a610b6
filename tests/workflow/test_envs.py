"""The conda environments of envs/ parse, pin exactly what pyproject.toml pins, and rules use them."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
ENV_FILES = sorted((REPO / "envs").glob("*.yaml"))
RULE_FILES = sorted((REPO / "workflow" / "rules").glob("*.smk"))


def project_pins() -> dict[str, str]:
    """pyproject.toml `dependencies` as {canonical name: exact version}."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = {}
    for line in project["dependencies"]:
        req = Requirement(line)
        (spec,) = req.specifier
        assert spec.operator == "==", f"pyproject.toml pins exactly: {line}"
        pins[canonicalize_name(req.name)] = spec.version
    return pins


def env_requirements(env: dict) -> tuple[list[str], list[Requirement]]:
    """(conda specs, pip requirements) of a parsed environment file."""
    conda, pip = [], []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip.extend(Requirement(line) for line in dep["pip"])
        else:
            conda.append(dep)
    return conda, pip


def test_envs_exist():
    assert {p.name for p in ENV_FILES} >= {"base.yaml", "preprocess.yaml", "torch.yaml"}


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_env_pins_agree_with_pyproject(path: Path):
    env = yaml.safe_load(path.read_text())
    assert set(env) == {"channels", "dependencies"}, f"{path.name}: unexpected keys {set(env)}"
    conda, pip = env_requirements(env)
    pins = project_pins()

    python = [spec for spec in conda if re.fullmatch(r"python[=<>].*", spec)]
    assert len(python) == 1, f"{path.name}: pin python exactly once"
    version = python[0].removeprefix("python").lstrip("=")
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    assert version in SpecifierSet(requires), f"{path.name}: python {version} vs {requires}"
    assert set(conda) <= {python[0], "pip"}, f"{path.name}: packages belong in the pip list: {conda}"

    assert pip, f"{path.name}: no pip packages"
    for req in pip:
        name = canonicalize_name(req.name)
        assert name in pins, f"{path.name}: {req.name} is not a pyproject.toml dependency"
        specs = list(req.specifier)
        assert len(specs) == 1 and specs[0].operator == "==", f"{path.name}: pin {req} exactly"
        assert specs[0].version == pins[name], f"{path.name}: {req} but pyproject pins {pins[name]}"
    names = [canonicalize_name(r.name) for r in pip]
    assert len(names) == len(set(names)), f"{path.name}: duplicate packages"


def rule_blocks(text: str) -> dict[str, str]:
    """{rule name: its body} of a .smk file (rules and checkpoints)."""
    parts = re.split(r"^[ \t]*(?:rule|checkpoint)\s+(\w+)\s*:\s*$", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2]))


def test_every_rule_that_runs_code_has_an_existing_conda_env():
    checked = 0
    for smk in RULE_FILES:
        for name, body in rule_blocks(smk.read_text()).items():
            if not re.search(r"^\s+(script|shell|run|notebook|wrapper)\s*:", body, flags=re.M):
                continue  # target-only rule
            match = re.search(r"^\s+conda:\s*\n?\s*\"([^\"]+)\"", body, flags=re.M)
            assert match, f"{smk.name}: rule {name} has no conda: directive"
            env = (smk.parent / match.group(1)).resolve()
            assert env.parent == REPO / "envs" and env.is_file(), f"rule {name}: {env} missing"
            checked += 1
    if checked == 0:
        pytest.skip("no rules with code yet")
