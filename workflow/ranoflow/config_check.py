"""The workflow config as the user gave it: typed `--config` overrides, one-line validation errors that
name the key and the file it came from, and a check that `dataset.root` is a LUMIERE folder.

Pure Python (jsonschema, PyYAML), read at Snakefile parse time by rules/common.smk.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from ranoflow import lumiere

COMMAND_LINE = "--config"
PLACEHOLDER_ROOT = "/path/to/LUMIERE"


def typed_overrides(value: Any) -> Any:
    """`--config` values with their nested scalars read as YAML: Snakemake parses the inside of
    `training={max_epochs: 2}` with YAML's BaseLoader, which leaves every scalar a string ('2')."""
    if isinstance(value, Mapping):
        return {key: typed_overrides(item) for key, item in value.items()}
    if isinstance(value, list):
        return [typed_overrides(item) for item in value]
    if isinstance(value, str):
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            return value
        return value if isinstance(parsed, (dict, list)) else parsed
    return value


def _holds(config: Mapping, path: tuple) -> bool:
    node: Any = config
    for key in path:
        if isinstance(node, Mapping) and key in node:
            node = node[key]
        elif isinstance(node, list) and isinstance(key, int) and key < len(node):
            node = node[key]
        else:
            return False
    return True


def source_of(path: tuple, sources: list[tuple[str, Mapping]]) -> str:
    """The last of `sources` ((name, config) in the order they were merged) that sets the key `path`."""
    for name, config in reversed(sources):
        if _holds(config, path):
            return name
    return sources[-1][0] if sources else "the config"


def _subschema(schema: Mapping, path: tuple) -> Mapping:
    node = schema
    for key in path:
        if isinstance(key, int):
            node = node.get("items", {})
        else:
            node = node.get("properties", {}).get(key) or node.get("additionalProperties") or {}
            if not isinstance(node, Mapping):
                return {}
    return node


def _key(path: tuple) -> str:
    return ".".join(str(part) for part in path) or "(top level)"


def _expected(schema: Mapping) -> str:
    if "enum" in schema:
        return "one of " + ", ".join(map(str, schema["enum"]))
    parts = [str(schema["type"])] if "type" in schema else []
    for word, limit in (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="), ("exclusiveMaximum", "<")):
        if word in schema:
            parts.append(f"{limit} {schema[word]}")
    return " ".join(parts) or "see the schema"


def describe(error: jsonschema.ValidationError, schema: Mapping, sources: list[tuple[str, Mapping]]) -> str:
    """One line for a validation error: the key, what is allowed there, and the file that set it."""
    path = tuple(error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = sorted(_subschema(schema, path).get("properties", {}))
        unknown = sorted(set(error.instance) - set(allowed))
        keys = ", ".join(_key((*path, key)) for key in unknown)
        return (f"unknown config key {keys} (in {source_of((*path, unknown[0]), sources)}); "
                f"allowed under {_key(path)}: {', '.join(allowed)}")
    if error.validator == "required":
        missing = error.message.split("'")[1]
        where = _subschema(schema, (*path, missing))
        hint = f" ({where['description']})" if "description" in where else ""
        return f"config key {_key((*path, missing))} is missing{hint}: set it in {source_of(path, sources)}"
    where = _subschema(schema, path)
    return (f"config key {_key(path)} = {error.instance!r} (in {source_of(path, sources)}) is not allowed: "
            f"expected {_expected(where)}")


def config_problem(config: Mapping, schema: Mapping, sources: list[tuple[str, Mapping]]) -> str | None:
    """The most relevant validation error of `config` against `schema` as one line, None when valid."""
    validator = jsonschema.validators.validator_for(schema)(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    return None if error is None else describe(error, schema, sources)


def dataset_root_problem(dataset: Mapping, source: str) -> str | None:
    """Why `dataset.root` (set in `source`) is not a LUMIERE folder, as one line; None when it is one."""
    root = str(dataset["root"])
    where = (f"set dataset.root to your downloaded LUMIERE folder in {source} "
             "(or in a small file given after it: --configfile config/lumiere.yaml my_site.yaml)")
    if root.strip() in ("", PLACEHOLDER_ROOT):
        return f"dataset.root is still the placeholder {root!r}: {where}"
    folder = Path(root)
    if not folder.is_dir():
        return f"dataset.root {root} is not a folder: {where}"
    missing = [name for name in (lumiere.IMAGING_DIR, dataset["ratings_csv"]) if not (folder / name).exists()]
    if missing:
        return f"dataset.root {root} has no {' or '.join(missing)}, so it is not a LUMIERE folder: {where}"
    return None
