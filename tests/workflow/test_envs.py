"""The conda environments of envs/ parse, pin exactly what pyproject.toml pins, every rule uses one, and
each rule's env provides what its script imports (directly or through ranoflow) and is the lightest that does."""

from __future__ import annotations

import functools
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from ranoflow.code_hash import external_imports

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


# ---- every rule's environment provides what its script imports, directly or through ranoflow ----
PACKAGE = REPO / "workflow" / "ranoflow"
# Provided by Snakemake itself: a script job puts Snakemake's own source on its sys.path.
FROM_SNAKEMAKE = {"snakemake"}


def rule_envs_and_scripts() -> dict[str, tuple[Path, Path]]:
    """{rule: (its conda env file, its script)} of every script rule."""
    found = {}
    for smk in RULE_FILES:
        for name, body in rule_blocks(smk.read_text()).items():
            script = re.search(r"^\s+script:\s*\n?\s*\"([^\"]+)\"", body, flags=re.M)
            env = re.search(r"^\s+conda:\s*\n?\s*\"([^\"]+)\"", body, flags=re.M)
            if script and env:
                found[name] = ((smk.parent / env.group(1)).resolve(), (smk.parent / script.group(1)).resolve())
    return found


@functools.cache
def _packages_distributions() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


def distributions_of_imports(names: set[str]) -> dict[str, set[str]]:
    """{import name: canonical names of the distributions that provide it} (this environment's
    packages_distributions, which knows e.g. `sklearn` -> scikit-learn, `ants` -> antspyx)."""
    provided = _packages_distributions()
    return {name: {canonicalize_name(d) for d in provided.get(name, [])} for name in names}


@functools.cache
def installed_closure(names: frozenset[str]) -> set[str]:
    """`names` and every distribution they require (no extras), as installed here: what pip puts into
    an environment that lists `names`."""
    todo, seen = list(names), set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = importlib.metadata.distribution(name).requires or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for line in requires:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(canonicalize_name(req.name))
    return seen


def env_packages(path: Path) -> frozenset[str]:
    return frozenset({canonicalize_name(r.name) for r in env_requirements(yaml.safe_load(path.read_text()))[1]})


def missing_distributions(env: Path, script: Path) -> dict[str, set[str]]:
    """{import name: its distributions} of the script's third-party imports that `env` does not provide.
    A distribution pyproject.toml pins must be listed by the env itself (so its version is the pinned
    one); others (pillow through matplotlib, packaging) may come as a listed package's dependency."""
    imports = {n for n in external_imports(script, PACKAGE) if n not in sys.stdlib_module_names} - FROM_SNAKEMAKE
    listed = env_packages(env)
    pinned = set(project_pins())
    provided = (installed_closure(listed) - pinned) | listed
    needed = distributions_of_imports(imports)
    unknown = sorted(name for name, dists in needed.items() if not dists)
    assert not unknown, f"{script.name}: imports {unknown}, provided by no installed distribution"
    return {name: dists for name, dists in needed.items() if not dists & provided}


RULES = rule_envs_and_scripts()


def test_rules_with_scripts_found():
    assert {"index", "pairs", "skull_strip", "register", "train", "explain", "summary"} <= set(RULES)


@pytest.mark.parametrize("rule", sorted(RULES))
def test_rule_env_provides_every_import_of_its_script(rule: str):
    env, script = RULES[rule]
    missing = missing_distributions(env, script)
    assert not missing, f"rule {rule}: envs/{env.name} lacks {missing} (imported by {script.name} or its ranoflow modules)"


@pytest.mark.parametrize("rule", sorted(RULES))
def test_rule_uses_the_lightest_env_that_provides_its_imports(rule: str):
    env, script = RULES[rule]
    sufficient = [path for path in ENV_FILES if not missing_distributions(path, script)]
    assert env in sufficient, f"rule {rule}: envs/{env.name} lacks some of its imports"
    lightest = min(sufficient, key=lambda path: len(installed_closure(env_packages(path))))
    assert len(installed_closure(env_packages(env))) == len(installed_closure(env_packages(lightest))), (
        f"rule {rule}: envs/{env.name} is heavier than needed; envs/{lightest.name} provides its imports"
    )
