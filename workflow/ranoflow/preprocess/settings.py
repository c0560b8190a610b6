"""The register job's settings from the config's `preprocessing` section (no heavy imports: the
Snakefile builds the rule's `settings` param with it, the preprocessing benchmark the same dict)."""

from __future__ import annotations

STRIP_KEYS = ("method", "transform", "resolution_mm")


def in_process_strip(preprocessing: dict) -> bool:
    """True when the register job also skull-strips its study (no separate skull_strip job)."""
    return preprocessing["input"] == "raw" and not preprocessing["skull_strip"]["separate_job"]


def register_settings(preprocessing: dict, segmentation_source: str = "deepbratumia") -> dict:
    """Every config value the register job reads; "skull_strip" is None when a skull_strip job runs first.

    The template paths of an in-process atlas skull strip are the job's inputs, not settings.
    """
    strip = None
    if in_process_strip(preprocessing):
        strip = {key: preprocessing["skull_strip"][key] for key in STRIP_KEYS}
        strip.update(anchor=preprocessing["anchor"], min_brain_ml=preprocessing["qc"]["min_brain_ml"])
    return {
        "input": preprocessing["input"],
        "atlas_transform": preprocessing["atlas_transform"],
        "registration_mm": preprocessing["registration_mm"],
        "n4": preprocessing["n4"],
        "qc": preprocessing["qc"],
        "segmentation_space": preprocessing["segmentation"]["space"],
        "segmentation_source": segmentation_source,
        "seed": preprocessing["seed"] if preprocessing["deterministic"] else None,
        "on_error": preprocessing["on_error"],
        "skull_strip": strip,
    }
