"""The workflow config as the user gave it: typed `--config` overrides, one-line validation errors that
name the key and the file it came from, and a check that `dataset.root` is a LUMIERE folder.

Pure Python (jsonschema, PyYAML), read at Snakefile parse time by rules/common.smk. As a command it names
the YAML syntax error of each config file given (Snakemake's own message for a `--configfile` names neither
the file nor the line): `.venv/bin/python -m ranoflow.config_check my_site.yaml`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
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


def yaml_problem(path: str | Path) -> str | None:
    """One line naming `path` and the line and column of its YAML syntax error; None when it parses."""
    try:
        yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        what = ": ".join(filter(None, (error.context, error.problem)))
        return f"{path}: not valid YAML{where}: {what}"
    except yaml.YAMLError as error:
        return f"{path}: not valid YAML: {error}".replace("\n", " ")
    return None


def config_sources(
    configfiles: Sequence[str | Path], overrides: Mapping, demo: tuple[str, Mapping]
) -> list[tuple[str, dict]]:
    """(name, values) of every part of the config in merge order: the --configfile files (named relative
    to the working directory when inside it) or else the demo config, then the typed --config values.

    Snakemake merges --configfile files into what `configfile:` loaded, so demo keys would leak into a
    real run: a run given --configfile uses exactly those files plus --config.
    """
    sources = [(_shown(Path(path)), yaml.safe_load(Path(path).read_text()) or {}) for path in configfiles]
    return [*(sources or [(demo[0], copy.deepcopy(dict(demo[1])))]), (COMMAND_LINE, typed_overrides(overrides))]


def _shown(path: Path) -> str:
    cwd = Path.cwd()
    return str(path.relative_to(cwd)) if path.is_absolute() and path.is_relative_to(cwd) else str(path)


def merged(sources: list[tuple[str, Mapping]]) -> dict:
    """The sources merged in order: mappings recursively, any other value replaced."""
    def merge(base: dict, extra: Mapping) -> dict:
        for key, value in extra.items():
            if isinstance(value, Mapping) and isinstance(base.get(key), dict):
                merge(base[key], value)
            else:
                base[key] = copy.deepcopy(value)
        return base

    config: dict = {}
    for _, values in sources:
        merge(config, values)
    return config


def demo_not_read(sources: list[tuple[str, Mapping]], demo: str) -> str | None:
    """A note that the demo config is left out because --configfile named other files, else None."""
    files = [name for name, _ in sources if name != COMMAND_LINE]
    if any(Path(name).resolve() == Path(demo).resolve() for name in files):
        return None
    with_cli = " and --config" if sources[-1][1] else ""
    return f"{demo} (the demo) is not read: the config comes from {', '.join(files)} only{with_cli}."


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


def _shown_value(value: Any) -> str:
    return "null" if value is None else str(value)


def _expected(schema: Mapping, root: Mapping) -> str:
    """What `schema` allows, in words: its enum values, its alternatives, or its type and bounds."""
    if "$ref" in schema:
        referred = root
        for part in str(schema["$ref"]).lstrip("#/").split("/"):
            referred = referred.get(part, {})
        return _expected({**referred, **{k: v for k, v in schema.items() if k != "$ref"}}, root)
    if "enum" in schema:
        return "one of " + ", ".join(map(_shown_value, schema["enum"]))
    alternatives = schema.get("oneOf") or schema.get("anyOf")
    if alternatives:
        return " or ".join(_expected(alternative, root) for alternative in alternatives)
    kinds = schema.get("type", "a value")
    parts = [" or ".join(kinds) if isinstance(kinds, list) else str(kinds)]
    if kinds == "array" and isinstance(schema.get("items"), Mapping):
        parts.append(f"of ({_expected(schema['items'], root)})")
    for word, limit in (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="), ("exclusiveMaximum", "<")):
        if word in schema:
            parts.append(f"{limit} {schema[word]}")
    for word, phrase in (("minItems", "at least {} item(s)"), ("maxItems", "at most {} item(s)"),
                         ("uniqueItems", "each item once"), ("pattern", "matching {}")):
        if schema.get(word) not in (None, False):
            parts.append(phrase.format(schema[word]))
    return " ".join(parts)


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
    # error.schema: the (sub)schema whose keyword failed, $refs already followed by jsonschema
    return (f"config key {_key(path)} = {error.instance!r} (in {source_of(path, sources)}) is not allowed: "
            f"expected {_expected(error.schema, schema)}")


def config_problem(config: Mapping, schema: Mapping, sources: list[tuple[str, Mapping]]) -> str | None:
    """The most relevant validation error of `config` against `schema` as one line, None when valid."""
    validator = jsonschema.validators.validator_for(schema)(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    return None if error is None else describe(error, schema, sources)


def settings_problem(config: Mapping, sources: list[tuple[str, Mapping]]) -> str | None:
    """Settings that are valid one by one but not together, or a dataset root that is not LUMIERE."""
    preprocessing = config["preprocessing"]
    if preprocessing["template"]["source"] == "dataset" and preprocessing["skull_strip"]["method"] == "atlas":
        return ("preprocessing.skull_strip.method atlas needs a whole-head template: set "
                "preprocessing.template.source to files (with head and brain_mask), or another skull_strip method "
                f"(in {source_of(('preprocessing',), sources)})")
    if config["dataset"]["source"] == "lumiere":
        return dataset_root_problem(config["dataset"], source_of(("dataset", "root"), sources))
    return None


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


if __name__ == "__main__":
    import sys

    found = [problem for problem in map(yaml_problem, sys.argv[1:]) if problem]
    print("\n".join(found) or f"{', '.join(sys.argv[1:])}: valid YAML")
    sys.exit(1 if found else 0)
