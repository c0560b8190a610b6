"""Every package module a rule's script imports (directly or through other modules) is an input of that
rule via `package_sources(...)`, so editing the module reruns the rule (Snakemake's code trigger only
sees the script itself)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "workflow" / "ranoflow"
RULE = re.compile(r"^(?:rule|checkpoint) (\w+):\n(.*?)(?=^(?:rule|checkpoint) |\Z)", re.S | re.M)
SOURCES = re.compile(r"package_sources\((.*?)\)", re.S)


def imported_modules(path: Path) -> set[str]:
    """ranoflow modules `path` imports directly."""
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.module == "ranoflow" or (node.level == 1 and node.module is None):
                modules |= {alias.name for alias in node.names}
            elif node.module and node.module.startswith("ranoflow."):
                modules.add(node.module.split(".")[1])
            elif node.level == 1 and node.module:
                modules.add(node.module)
        elif isinstance(node, ast.Import):
            modules |= {a.name.split(".")[1] for a in node.names if a.name.startswith("ranoflow.")}
    return {module for module in modules if (PACKAGE / f"{module}.py").exists()}


def closure(modules: set[str]) -> set[str]:
    seen: set[str] = set()
    todo = list(modules)
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(imported_modules(PACKAGE / f"{module}.py"))
    return seen


def declared(body: str, common: str) -> set[str]:
    names = set()
    for match in SOURCES.finditer(body):
        names |= set(re.findall(r'"(\w+)"', match.group(1)))
    for constant in re.findall(r"src=([A-Z_]+)", body):
        assignment = re.search(rf"^{constant} = package_sources\((.*?)\)", common, re.S | re.M)
        assert assignment, f"{constant} is not a package_sources(...) list in common.smk"
        names |= set(re.findall(r'"(\w+)"', assignment.group(1)))
    return names


def script_rules() -> list[tuple[str, str, str]]:
    rules = []
    for smk in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        for name, body in RULE.findall(smk.read_text()):
            script = re.search(r'script:\s*\n\s*"\.\./scripts/(\w+\.py)"', body)
            if script:
                rules.append((name, body, script.group(1)))
    return rules


def test_rules_with_scripts_are_found() -> None:
    assert {"index", "pairs", "register", "train", "explain", "rano_baseline"} <= {r for r, _, _ in script_rules()}


@pytest.mark.parametrize("rule, body, script", script_rules(), ids=[rule for rule, _, _ in script_rules()])
def test_rule_declares_every_module_its_script_imports(rule: str, body: str, script: str) -> None:
    common = (REPO / "workflow" / "rules" / "common.smk").read_text()
    needed = closure(imported_modules(REPO / "workflow" / "scripts" / script)) - {"__init__"}
    missing = needed - declared(body, common)
    assert not missing, f"rule {rule}: add {sorted(missing)} to its package_sources(...)"
