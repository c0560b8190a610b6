"""Experiments: training defaults + per-experiment overrides, resolved into one plain dict per job.

Pure Python (no torch): the Snakefile imports this at parse time.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from ranoflow.vocabulary import CLINICAL_FIELDS, MODALITIES, REFERENCES

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "config.schema.yaml"
WEIGHT_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin")


@functools.cache
def _schema() -> dict:
    return yaml.safe_load(SCHEMA_PATH.read_text())


def _default_filling_validator(section: str) -> jsonschema.protocols.Validator:
    schema = _schema()
    sub = {"$schema": schema["$schema"], "$defs": schema["$defs"], **schema["properties"][section]}
    base = jsonschema.validators.validator_for(sub)

    def set_defaults(validator, properties, instance, subschema):
        if isinstance(instance, dict):
            for prop, prop_schema in properties.items():
                if "default" in prop_schema:
                    instance.setdefault(prop, copy.deepcopy(prop_schema["default"]))
        yield from base.VALIDATORS["properties"](validator, properties, instance, subschema)

    return jsonschema.validators.extend(base, {"properties": set_defaults})(sub)


def validated_section(section: str, value: dict | None) -> dict:
    """A config section validated against the workflow schema, with its defaults filled in."""
    value = copy.deepcopy(value or {})
    _default_filling_validator(section).validate(value)
    return value


def _deep_merge(base: dict, override: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and key != "model_kwargs":
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def merged_training(training: dict, overrides: dict | None, where: str) -> dict:
    """Training settings with `overrides` applied (validated; pretext tasks are not inherited)."""
    base = {k: v for k, v in training.items() if k != "pretext_tasks"}
    try:
        return validated_section("training", _deep_merge(base, overrides or {}))
    except jsonschema.ValidationError as err:
        path = ".".join(map(str, err.absolute_path))
        raise ValueError(f"{where}: invalid training override {path!r}: {err.message}") from None


def canonical_modalities(modalities: list[str]) -> list[str]:
    """Modalities in the fixed order CT1, T1, T2, FLAIR (so [T2, T1] and [T1, T2] are one layout)."""
    unknown = sorted(set(modalities) - set(MODALITIES))
    if unknown:
        raise ValueError(f"unknown modalities {unknown}; choose from {list(MODALITIES)}")
    return [m for m in MODALITIES if m in modalities]


def canonical_references(references: list[str] | None) -> list[str]:
    """Reference studies in the fixed order of REFERENCES (default: the previous study, as the paper)."""
    references = list(references or ["previous"])
    unknown = sorted(set(references) - set(REFERENCES))
    if unknown:
        raise ValueError(f"unknown references {unknown}; choose from {list(REFERENCES)}")
    return [r for r in REFERENCES if r in references]


def channel_names(modalities: list[str], input_mode: str, references: list[str] | None = None) -> list[str]:
    """Channel layout of the network input.

    stack: every modality of the current study, then every modality of each reference study in turn;
    subtract: current minus each reference in turn, one channel per modality;
    stack_diff: the stack's channels, then the subtraction's.
    """
    mods = canonical_modalities(modalities)
    refs = canonical_references(references)
    stacked = [f"{m}_{side}" for side in ("current", *refs) for m in mods]
    differences = [f"{m}_current-{ref}" for ref in refs for m in mods]
    if input_mode == "stack":
        return stacked
    if input_mode == "subtract":
        return differences
    if input_mode == "stack_diff":
        return stacked + differences
    raise ValueError(f"unknown input {input_mode!r}; choose stack, subtract or stack_diff")


GRID_KEYS = ("image_size", "fit")  # the tensor store's grid: one for every experiment


def grid_overrides(resolved: Mapping[str, Mapping[str, Any]], training: Mapping[str, Any]) -> list[str]:
    """One line per experiment or pretext task whose training grid differs from training's (the tensor
    store holds every study at one grid, training.image_size and training.fit)."""
    return [
        f"{name}: training.{key} {entry['training'][key]} differs from the tensor store's grid "
        f"(training.{key}: {training.get(key)}); set it under training: for every experiment"
        for name, entry in resolved.items()
        for key in GRID_KEYS
        if key in training and entry["training"][key] != training[key]
    ]


def clinical_fields(value: bool | list[str] | None) -> list[str]:
    """Clinical fields an experiment uses: false -> none, true -> all, list -> those (fixed order)."""
    if value is None or value is False:
        return []
    if value is True:
        return list(CLINICAL_FIELDS)
    unknown = sorted(set(value) - set(CLINICAL_FIELDS))
    if unknown:
        raise ValueError(f"unknown clinical fields {unknown}; choose from {list(CLINICAL_FIELDS)}")
    return [f for f in CLINICAL_FIELDS if f in value]


def resolve_pretext_task(name: str, training: dict) -> dict:
    """A self-supervised pretraining task, resolved like an experiment."""
    tasks = training.get("pretext_tasks", {})
    if name not in tasks:
        raise ValueError(f"pretext task {name!r} is not defined under training.pretext_tasks ({sorted(tasks)})")
    task = tasks[name]
    modalities = canonical_modalities(task["modalities"])
    channels = channel_names(modalities, task["input"])
    return {
        "name": name,
        "method": task["method"],
        "architecture": task["architecture"],
        "modalities": modalities,
        "input": task["input"],
        "channels": channels,
        "in_channels": len(channels),
        "training": merged_training(training, task.get("training"), f"pretext task {name!r}"),
    }


def _pretraining(value: str, training: dict, where: str) -> dict:
    tasks = training.get("pretext_tasks", {})
    if value in ("", "none"):
        return {"kind": "none"}
    if value in tasks:
        return {"kind": "task", "task": value}
    if value.endswith(WEIGHT_SUFFIXES):
        return {"kind": "file", "path": value}
    raise ValueError(
        f"{where}: pretraining {value!r} is neither 'none', a pretext task ({sorted(tasks)}) "
        f"nor a weights file ending in {WEIGHT_SUFFIXES}"
    )


def resolve_experiment(name: str, experiments: dict, training: dict) -> dict:
    """One experiment as the train job sees it: its choices, channel layout and merged training settings."""
    if name not in experiments:
        raise ValueError(f"experiment {name!r} is not defined (known: {sorted(experiments)})")
    where = f"experiment {name!r}"
    exp = experiments[name]
    modalities = canonical_modalities(exp["modalities"])
    references = canonical_references(exp.get("references"))
    channels = channel_names(modalities, exp["input"], references)
    resolved = {
        "name": name,
        "ablation": exp.get("ablation", ""),
        "reference": exp.get("reference"),
        "description": exp.get("description", ""),
        "modalities": modalities,
        "input": exp["input"],
        "references": references,
        "architecture": exp["architecture"],
        "pretraining": _pretraining(str(exp.get("pretraining", "none")), training, where),
        "clinical": clinical_fields(exp.get("clinical", False)),
        "channels": channels,
        "in_channels": len(channels),
        "training": merged_training(training, exp.get("training"), where),
    }
    _check_encoder(resolved, where)
    if resolved["pretraining"]["kind"] == "task":
        task = resolve_pretext_task(resolved["pretraining"]["task"], training)
        for key in ("architecture", "in_channels"):
            if task[key] != resolved[key]:
                raise ValueError(
                    f"{where}: pretext task {task['name']!r} trains a {key}={task[key]!r} backbone, "
                    f"but the experiment needs {key}={resolved[key]!r}"
                )
    return resolved


def _check_encoder(resolved: dict, where: str) -> None:
    training = resolved["training"]
    if training["encoder"] == "shared" and resolved["input"] != "stack":
        raise ValueError(f"{where}: training.encoder shared reads each study on its own and needs input: stack, "
                         f"not {resolved['input']!r}")
    if training["volume_loss"] and training["encoder"] != "shared":
        raise ValueError(f"{where}: training.volume_loss regresses a volume per study and needs "
                         "training.encoder: shared")
    if training["head"] == "volumes" and not training["volume_loss"]:
        raise ValueError(f"{where}: training.head volumes rates from the volume estimates and needs "
                         "training.volume_loss above 0")
    if training["encoder"] == "shared" and resolved["pretraining"]["kind"] == "task":
        raise ValueError(f"{where}: pretext tasks train a joint backbone; training.encoder shared cannot use one")


def resolve_experiments(experiments: dict, training: dict) -> dict[str, dict]:
    """Every experiment resolved (errors name the experiment), in config order."""
    return {name: resolve_experiment(name, experiments, training) for name in experiments}


def pretext_tasks_used(resolved: dict[str, dict]) -> list[str]:
    """Pretext tasks some experiment consumes."""
    return sorted({e["pretraining"]["task"] for e in resolved.values() if e["pretraining"]["kind"] == "task"})


def to_plain(value: Any) -> Any:
    """A config value with every mapping as a plain dict (Snakemake hands out its own types)."""
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    return value


def sparse_experiments(pairs: Sequence[Mapping[str, str]], experiments: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """One line per experiment whose modalities or reference studies most scorable pairs lack (they would be
    left out of its folds), known as soon as pairs.tsv exists. `pairs`: pairs.tsv's rows as text."""
    lines = []
    for name, experiment in experiments.items():
        needed = canonical_modalities(list(experiment["modalities"]))
        references = [r for r in canonical_references(experiment.get("references")) if r != "previous"]
        lacking = sum(
            not set(needed) <= set(filter(None, str(pair["modalities"]).split(",")))
            or any(not str(pair.get(reference, "")) for reference in references)
            for pair in pairs
        )
        if pairs and lacking > len(pairs) / 2:
            what = ",".join(needed) + "".join(f" and a {reference} study" for reference in references)
            lines.append(
                f"experiment {name} needs {what}, which {lacking} of {len(pairs)} scorable pairs "
                f"({100 * lacking / len(pairs):.0f} %) lack: they would be left out of its folds (check "
                f"experiments.{name}.modalities and references, or set index.allow_sparse_experiments: true)"
            )
    return lines


def image_size_problems(experiments: Mapping, resolved: Mapping, tasks: Mapping, resolved_tasks: Mapping) -> list[str]:
    """One line per experiment or pretext task whose image_size its architecture cannot take (parse time)."""
    from ranoflow.train.input_size import image_size_problem

    lines = []
    for kind, raw, done in (("experiments", experiments, resolved), ("training.pretext_tasks", tasks, resolved_tasks)):
        for name, entry in done.items():
            own = "image_size" in ((raw.get(name) or {}).get("training") or {})
            key = f"{kind}.{name}.training.image_size" if own else f"training.image_size (for {kind} {name})"
            training = entry["training"]
            line = image_size_problem(entry["architecture"], training["image_size"], training.get("model_kwargs"), key)
            if line:
                lines.append(line)
    return lines
