"""Register jobs from a rule's named inputs: one study (rule register) or a patient's studies in one
process (rule register_patient, preprocessing.batch: patient), so a batch pays the process start and the
ANTs import once. Both write the same study folders."""

from __future__ import annotations

from pathlib import Path

# Inputs a register_patient job shares between its studies; the others are named "<study>/<name>".
SHARED_INPUTS = ("brain", "brain_mask", "registration_brain", "template_head", "template_mask")


def register_from_inputs(inputs: dict[str, str], out_dir: str | Path, settings: dict,
                         reference_dir: str | None = None) -> dict:
    """One study's register_job with the rule's named inputs (image_<MOD>, seg, mask, strip, reference,
    the atlas grid and template files) and its settings (ranoflow.preprocess.settings.register_settings)."""
    from ranoflow.preprocess.register_job import register_job

    strip_settings = settings["skull_strip"]
    if strip_settings is not None:
        strip_settings = strip_settings | {"template_head": inputs.get("template_head"),
                                           "template_mask": inputs.get("template_mask")}
    return register_job(
        images={name.removeprefix("image_"): path for name, path in inputs.items() if name.startswith("image_")},
        out_dir=out_dir,
        grid_paths={key: inputs[key] for key in ("brain", "brain_mask", "registration_brain")},
        settings=settings,
        strip_json=inputs.get("strip"),
        mask_path=inputs.get("mask"),
        segmentation=inputs.get("seg"),
        reference_dir=reference_dir or inputs.get("reference"),
        on_error=settings["on_error"],
        strip_settings=strip_settings,
    )


def study_inputs(inputs: dict[str, str], study: str) -> dict[str, str]:
    """The named inputs of one study of a register_patient job (its own and the shared ones)."""
    own = {name.split("/", 1)[1]: path for name, path in inputs.items() if name.startswith(f"{study}/")}
    return own | {name: inputs[name] for name in SHARED_INPUTS if name in inputs}


def register_patient(inputs: dict[str, str], out_dir: str | Path, settings: dict) -> list[dict]:
    """Every study of settings["studies"] ([{"study", "settings", "reference"}], in processing order: a
    longitudinal reference before the studies registered to it) into out_dir/<study>."""
    out_dir = Path(out_dir)
    records = []
    for job in settings["studies"]:
        study, reference = job["study"], job["reference"]
        reference_dir = str(out_dir / reference) if reference else None
        records.append(register_from_inputs(study_inputs(inputs, study), out_dir / study, job["settings"], reference_dir))
    return records

