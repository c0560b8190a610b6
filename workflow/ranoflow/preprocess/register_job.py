"""One study's registration onto the atlas grid with its QC: the job behind rule register.

The job either finishes with a status record or, with on_error="skip" and a fault of the data, writes a
"failed" record and returns normally so the workflow goes on without the study; a fault of the machine
(ranoflow.preprocess.faults) fails the job, leaving an empty folder that Snakemake removes.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

from ranoflow.preprocess import image_io
from ranoflow.preprocess.qc import (
    DEFAULT_MIN_COVERAGE_RATIO,
    CoverageError,
    coverage_problem,
    failed_status,
    judge,
    qc_figure,
    write_status,
)

log = logging.getLogger(__name__)


def _load_grid(grid: dict[str, str]):
    from ranoflow.preprocess.registration import AtlasGrid

    brain, mask = image_io.load_volume(grid["brain"]), image_io.load_volume(grid["brain_mask"])
    return AtlasGrid(brain=brain, mask=mask), image_io.load_volume(grid["registration_brain"])


def _reference_fixed(reference_dir: str | None, anchor: str):
    """The reference study's registered anchor (longitudinal mode), or None to use the atlas."""
    if not reference_dir:
        return None, ""
    status = json.loads((Path(reference_dir) / "status.json").read_text())
    if status.get("status") == "failed":
        return None, f"reference {Path(reference_dir).name} failed, registered to the atlas instead"
    name = anchor if (Path(reference_dir) / f"{anchor}.nii.gz").is_file() else status["anchor"]
    image = image_io.load_volume(Path(reference_dir) / f"{name}.nii.gz")
    mask = image_io.load_volume(Path(reference_dir) / "brain_mask.nii.gz")
    # z-scores are negative in half the brain; ANTs' centre-of-mass start needs non-negative weights.
    return (image - float(image.min())) * mask, ""


def _strip_in_process(images: dict[str, str], loaded: dict, strip_settings: dict) -> tuple[dict, object]:
    """(skull_strip.json record, native brain mask) of the study, computed in this process."""
    from ranoflow.preprocess.skull_strip import strip_study

    start = time.perf_counter()
    mask, record = strip_study(
        images, strip_settings["method"], strip_settings.get("anchor") or None,
        strip_settings.get("template_head"), strip_settings.get("template_mask"),
        strip_settings.get("transform", "Affine"), strip_settings.get("resolution_mm", 2.0),
        strip_settings.get("min_brain_ml", 200.0), loaded,
    )
    record["seconds"] = round(time.perf_counter() - start, 2)
    return record, mask


def register_job(
    images: dict[str, str],
    out_dir: str | Path,
    grid_paths: dict[str, str],
    settings: dict,
    strip_json: str | None = None,
    mask_path: str | None = None,
    segmentation: str | None = None,
    reference_dir: str | None = None,
    on_error: str = "skip",
    strip_settings: dict | None = None,
) -> dict:
    """Run one study's registration and QC into out_dir (the contract's study directory).

    settings: input, atlas_transform, registration_mm, n4, qc, segmentation_space, segmentation_source.
    The brain mask comes from a skull_strip job (strip_json, mask_path) or, given strip_settings
    (skull_strip settings plus anchor, template_head, template_mask, min_brain_ml), is computed here in
    the same process. status.json gets the seconds of each step under "steps".
    """
    from ranoflow.preprocess import registration as reg
    from ranoflow.preprocess.skull_strip import passthrough_mask

    out_dir = Path(out_dir)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    start = time.perf_counter()
    steps = reg.StepSeconds()
    strip: dict = {"method": settings["input"], "seconds": 0.0}
    if strip_json:
        strip = json.loads(Path(strip_json).read_text())
    record: dict = {"anchor": strip.get("anchor", ""), "skull_strip": strip.get("method", "")}
    try:
        if strip.get("status") == "failed":
            raise RuntimeError(f"skull strip failed: {strip.get('reason')}")
        with steps.step("loading"):
            loaded = {m: image_io.load_volume(p) for m, p in images.items()}
            if not loaded:
                raise ValueError("no modality image available for this study")
            grid, atlas_fixed = _load_grid(grid_paths)
        native_mask = None
        if strip_settings and settings["input"] != "deepbratumia":
            strip, native_mask = _strip_in_process(images, loaded, strip_settings)
            record.update(anchor=strip["anchor"], skull_strip=strip["method"])
        steps["skull_strip"] = float(strip.get("seconds") or 0.0)
        if settings["input"] == "deepbratumia":
            anchor = reg.choose_anchor({m: tuple(i.spacing) for m, i in loaded.items()})
            native_mask, fixed, note = passthrough_mask(loaded[anchor]), None, ""
        else:
            anchor = strip["anchor"]
            if native_mask is None:
                native_mask = image_io.load_volume(mask_path)
            fixed, note = _reference_fixed(reference_dir, anchor)
            fixed = atlas_fixed if fixed is None else fixed
        result = reg.register_study(
            loaded, anchor, native_mask, grid, fixed, out_dir,
            settings["atlas_transform"], settings["registration_mm"], settings["n4"], steps,
        )
        if segmentation:
            space = settings["segmentation_space"]
            chain = [str(out_dir / t) for t in result.transforms.get(space, result.transforms[anchor])]
            with steps.step("resampling"):
                seg = reg.map_segmentation(image_io.load_volume(segmentation), grid.brain, chain,
                                           settings["segmentation_source"])
                image_io.save_volume(seg, out_dir / "tumour_seg.nii.gz", "uint8")
        qc = settings["qc"]
        coverage = result.coverage
        problem = coverage_problem(coverage, qc.get("min_coverage_ratio", DEFAULT_MIN_COVERAGE_RATIO))
        if problem:
            raise CoverageError(problem)
        status, reason = judge(result.dice, result.similarity, qc["min_dice"], qc["min_similarity"])
        if strip.get("status") == "flagged":
            status, reason = "flagged", "; ".join(r for r in (strip.get("reason", ""), reason) if r)
        record.update(
            status=status, reason="; ".join(r for r in (reason, note) if r), anchor=anchor,
            dice=round(result.dice, 4), similarity=round(result.similarity, 4), modalities=result.modalities,
            brain_volume_ml=strip.get("brain_volume_ml"), segmentation=segmentation or "", coverage=coverage,
            reference=Path(reference_dir).name if reference_dir and fixed is not atlas_fixed else "",
        )
        (out_dir / "transforms" / "transforms.json").write_text(json.dumps(result.transforms, indent=2) + "\n")
        with steps.step("qc"):
            qc_figure(out_dir / "qc.png", loaded[anchor], native_mask, result.anchor_on_grid, grid.mask,
                      f"{out_dir.parent.name}/{out_dir.name}  anchor {anchor}  Dice {result.dice:.3f}  "
                      f"r {result.similarity:.2f}  [{status}]")
    except Exception as error:  # noqa: BLE001 - any failure becomes the study's status under skip
        for partial in out_dir.iterdir():  # no half-written study reaches later stages
            shutil.rmtree(partial) if partial.is_dir() else partial.unlink()
        record.update(failed_status(error, on_error), modalities=[])  # raises for a fault of the machine
    separate_strip = 0.0 if strip_settings else float(strip.get("seconds") or 0.0)
    record["seconds"] = round(time.perf_counter() - start + separate_strip, 2)
    record["steps"] = dict(steps)
    write_status(out_dir / "status.json", record)
    log.info("register: %s", {k: v for k, v in record.items() if k != "modalities"})
    return record
