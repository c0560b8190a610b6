"""Which code a rule's job runs, as one content hash (pure Python, read at Snakefile parse time).

Each rule passes the hash of its script as a param (`script_code` in rules/common.smk). It covers the script
and every module of the package it imports, directly or through other modules, parent packages' __init__
included: Snakemake reruns a job exactly when that code changes, and not when the checkout moves, is cloned
again or its files are only touched.
"""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path


def module_path(name: str, package_dir: Path) -> Path | None:
    """The file of a module or package of the package at `package_dir` (`ranoflow.train.fold` ->
    <package_dir>/train/fold.py), None when there is none."""
    parts = name.split(".")
    if parts[0] != package_dir.name:
        return None
    base = package_dir.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _module_name(path: Path, package_dir: Path) -> str | None:
    """`ranoflow.train.fold` for <package_dir>/train/fold.py, None outside the package."""
    try:
        parts = path.resolve().relative_to(package_dir.resolve()).with_suffix("").parts
    except ValueError:
        return None
    return ".".join((package_dir.name, *parts[: -1 if parts[-1] == "__init__" else None]))


def _resolve_relative(node: ast.ImportFrom, importer: str | None, is_package: bool) -> str | None:
    if node.level == 0:
        return node.module
    if importer is None:
        return None
    anchor = importer.split(".")
    anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
    return ".".join(anchor + ([node.module] if node.module else []))


def _all_imports(path: Path, package_dir: Path) -> set[str]:
    """Every module name a Python file imports anywhere in its body (function-level imports included)."""
    importer = _module_name(path, package_dir)
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            module = _resolve_relative(node, importer, is_package)
            if module:
                found.add(module)
                # `from ranoflow.train import fold` imports the submodule `ranoflow.train.fold`
                found |= {f"{module}.{alias.name}" for alias in node.names}
    return found


def imported_modules(path: Path, package_dir: Path) -> set[str]:
    """Modules of the package a Python file imports anywhere in its body (function-level imports included)."""
    return {name for name in _all_imports(path, package_dir) if module_path(name, package_dir) is not None}


def _with_parents(name: str) -> set[str]:
    parts = name.split(".")
    return {".".join(parts[:k]) for k in range(1, len(parts) + 1)}


def module_closure(script: str | Path, package_dir: Path) -> list[str]:
    """Every module of the package the script needs, sorted: its imports, theirs, and their parent packages."""
    todo = list(imported_modules(Path(script), package_dir))
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        for module in _with_parents(name) - seen:
            seen.add(module)
            todo.extend(imported_modules(module_path(module, package_dir), package_dir))
    return sorted(seen)


def code_hash(script: str | Path, package_dir: str | Path) -> str:
    """Content hash of a script and its closure in the package at `package_dir` (16 hex digits);
    independent of where the files lie and of their mtimes."""
    package_dir = Path(package_dir)
    digest = hashlib.sha256(Path(script).read_bytes())
    for module in module_closure(script, package_dir):
        digest.update(b"\0" + module.encode() + b"\0" + module_path(module, package_dir).read_bytes())
    return digest.hexdigest()[:16]


def external_imports(script: str | Path, package_dir: str | Path) -> set[str]:
    """Top-level names of the modules outside the package that the script and its package closure
    import (standard library included), e.g. {"json", "numpy", "torch"}."""
    package_dir = Path(package_dir)
    files = [Path(script), *(module_path(m, package_dir) for m in module_closure(script, package_dir))]
    names = set().union(*(_all_imports(path, package_dir) for path in files))
    return {name.split(".")[0] for name in names if name.split(".")[0] != package_dir.name}
