"""Code is tracked by content: every rule with a script carries `code=script_code("<its script>")`, the hash
covers every package module the script loads, and it follows the files' content, not their paths or mtimes.
(tests/workflow/test_reruns.py checks the same on a finished run: a moved copy, touched files, an edited stage.)"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ranoflow.code_hash import code_hash, imported_modules, module_closure

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / "workflow"
PACKAGE = WORKFLOW / "ranoflow"
SCRIPTS = sorted((WORKFLOW / "scripts").glob("*.py"))
RULE = re.compile(r"^(?:rule|checkpoint) (\w+):\n(.*?)(?=^(?:rule|checkpoint) |\Z)", re.S | re.M)


def script_rules() -> list[tuple[str, str, str]]:
    """(rule, body, script name) of every rule that runs a script."""
    rules = []
    for smk in sorted((WORKFLOW / "rules").glob("*.smk")):
        text = "\n".join(line.removeprefix("    ") for line in smk.read_text().splitlines())  # nested rules
        for name, body in RULE.findall(text):
            script = re.search(r'script:\s*\n\s*"\.\./scripts/(\w+)\.py"', body)
            if script:
                rules.append((name, body, script.group(1)))
    return rules


def test_rules_with_scripts_are_found() -> None:
    found = {rule for rule, _, _ in script_rules()}
    assert {"synthetic_dataset", "index", "pairs", "register", "train", "summary", "explain", "rano_baseline"} <= found


@pytest.mark.parametrize(("rule", "body", "script"), script_rules(), ids=[rule for rule, _, _ in script_rules()])
def test_rule_hashes_its_own_script(rule: str, body: str, script: str) -> None:
    assert re.search(rf'^\s+code=script_code\("{script}"\),$', body, re.M), (
        f'rule {rule}: add `code=script_code("{script}")` to its params'
    )
    assert "package_sources" not in body and "ranoflow/" not in body, f"rule {rule}: code is a param, not an input"


def test_every_script_belongs_to_a_rule() -> None:
    assert {path.stem for path in SCRIPTS} == {script for _, _, script in script_rules()}


LOADED = """
import ast, json, sys
sys.path.insert(0, sys.argv[1])
loaded = {}
for path in sys.argv[2:]:
    for name in [m for m in sys.modules if m == "ranoflow" or m.startswith("ranoflow.")]:
        del sys.modules[name]
    tree = ast.parse(open(path).read())
    imports = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    exec(compile(ast.Module(body=imports, type_ignores=[]), path, "exec"), {"__name__": "probe"})
    loaded[path] = sorted(m for m in sys.modules if m == "ranoflow" or m.startswith("ranoflow."))
print(json.dumps(loaded))
"""


@pytest.mark.slow
def test_closure_holds_every_module_a_script_loads() -> None:
    """What Python actually loads for each script's imports is part of the hashed closure."""
    run = subprocess.run(
        [sys.executable, "-c", LOADED, str(WORKFLOW), *map(str, SCRIPTS)], capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stderr[-3000:]
    for path, loaded in json.loads(run.stdout).items():
        missing = set(loaded) - set(module_closure(path, PACKAGE))
        assert not missing, f"{Path(path).name}: loads {sorted(missing)} that its code hash misses"


def write_package(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root / "ranoflow"


def test_closure_follows_absolute_relative_lazy_and_submodule_imports(tmp_path: Path) -> None:
    package = write_package(
        tmp_path,
        {
            "ranoflow/__init__.py": "",
            "ranoflow/vocabulary.py": "CLASSES = ()\n",
            "ranoflow/unused.py": "",
            "ranoflow/a/__init__.py": "from . import helper\n",
            "ranoflow/a/helper.py": "from ..vocabulary import CLASSES\n",
            "ranoflow/a/job.py": "import numpy\n\ndef run():\n    from ranoflow.b import lazy\n",
            "ranoflow/b/__init__.py": "",
            "ranoflow/b/lazy.py": "from .deep import thing\n",
            "ranoflow/b/deep.py": "thing = 1\n",
            "script.py": "from ranoflow.a import job\n",
        },
    )
    assert imported_modules(package / "a" / "helper.py", package) == {"ranoflow.vocabulary"}
    assert module_closure(tmp_path / "script.py", package) == [
        "ranoflow",
        "ranoflow.a",
        "ranoflow.a.helper",
        "ranoflow.a.job",
        "ranoflow.b",
        "ranoflow.b.deep",
        "ranoflow.b.lazy",
        "ranoflow.vocabulary",
    ]


def test_hash_follows_content_not_place_or_mtime(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second" / "deeper"
    shutil.copytree(WORKFLOW, first / "workflow")
    shutil.copytree(WORKFLOW, second / "workflow")
    for path in (second / "workflow").rglob("*.py"):
        os.utime(path, (1, 1))

    def hashes(root: Path) -> dict[str, str]:
        workflow = root / "workflow"
        return {path.stem: code_hash(path, workflow / "ranoflow") for path in (workflow / "scripts").glob("*.py")}

    before = hashes(first)
    assert before == hashes(second)

    figures = first / "workflow" / "ranoflow" / "explain" / "figures.py"
    figures.write_text(figures.read_text() + "\n# an edit of the explain stage\n")
    changed = {name for name, value in hashes(first).items() if value != before[name]}
    assert changed == {"explain", "predict"}  # predict draws its saliency figures with the explain stage's code

    vocabulary = first / "workflow" / "ranoflow" / "vocabulary.py"
    vocabulary.write_text(vocabulary.read_text() + "\n# an edit every stage sees\n")
    closures = {path.stem: module_closure(path, PACKAGE) for path in SCRIPTS}
    users = {name for name, closure in closures.items() if "ranoflow.vocabulary" in closure}
    changed = {name for name, value in hashes(first).items() if value != before[name]}
    assert changed == users | {"explain"} and "train" in users


def test_hash_reads_no_heavy_library() -> None:
    """code_hash runs at parse time: it parses the sources and imports none of the modules it hashes."""
    tree = ast.parse((PACKAGE / "code_hash.py").read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported <= {"__future__", "ast", "hashlib", "pathlib"}
