"""Preprocessing benchmark: one LUMIERE-sized study through the register rule's own code path, with the
settings of a workflow config (default config/lumiere.yaml, schema defaults filled in as the Snakefile
does), in a fresh process as a Snakemake job runs it. Prints seconds per step (loading, skull strip,
registration, resampling, N4, QC), wall and CPU seconds, peak memory and the brain-mask Dice.

The study: T1/FLAIR 640x640x24 at 0.36x0.36x6 mm, T2 512x512x30 at 0.45x0.45x5 mm, CT1 180x220x190 at
1 mm (LUMIERE's native grids), skull-stripped, cut from the config's template brain in a random head
pose with a smooth multiplicative bias field and noise. Without the config's template files (Colin27
from Debian's mricron-data is not installed everywhere) the synthetic generator's 1 mm template
stands in, and the output says so.

  python tests/benchmarks/preprocessing.py                          # config/lumiere.yaml, 2 threads
  python tests/benchmarks/preprocessing.py --config my.yaml --threads 1 --keep /tmp/study
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "workflow"))

# LUMIERE-like native grids: (shape, spacing mm)
LUMIERE_GRIDS = {
    "CT1": ((180, 220, 190), (1.0, 1.0, 1.0)),
    "T1": ((640, 640, 24), (0.36, 0.36, 6.0)),
    "T2": ((512, 512, 30), (0.45, 0.45, 5.0)),
    "FLAIR": ((640, 640, 24), (0.36, 0.36, 6.0)),
}
STEPS = ("loading", "skull_strip", "registration", "resampling", "n4", "qc")


def load_config(path: Path) -> dict:
    """The config as the Snakefile sees it: the file with the schema's defaults filled in."""
    import yaml
    from snakemake.utils import validate

    config = yaml.safe_load(path.read_text())
    validate(config, str(REPO / "workflow/schemas/config.schema.yaml"), set_default=True)
    return config


def template_files(preprocessing: dict, tmp: Path) -> tuple[str, str, str]:
    """(head, brain mask, what they are): the config's template, or the synthetic 1 mm one."""
    head, mask = preprocessing["template"]["head"], preprocessing["template"]["brain_mask"]
    if Path(head).is_file() and Path(mask).is_file():
        return head, mask, f"template {head}"
    from ranoflow.dataset.generator import SyntheticConfig, write_template

    write_template(SyntheticConfig(template_mm=1.0), tmp / "head.nii.gz", tmp / "brain_mask.nii.gz")
    return str(tmp / "head.nii.gz"), str(tmp / "brain_mask.nii.gz"), \
        f"template: {head} missing, the synthetic generator's 1 mm template instead"


def _pose(rng, base_angles, base_shift):
    import ants
    import numpy as np

    angles = np.deg2rad(base_angles + rng.uniform(-2, 2, 3))  # the patient moves a little between sequences
    cx, cy, cz = np.cos(angles)
    sx, sy, sz = np.sin(angles)
    rotation = (
        np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
        @ np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
        @ np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    ) * 1.04  # a head 4 % larger than the atlas
    return ants.create_ants_transform(transform_type="AffineTransform", matrix=rotation,
                                      translation=base_shift + rng.uniform(-3, 3, 3))


def make_lumiere_study(out: Path, head: str, mask: str, seed: int = 3) -> dict[str, str]:
    """A skull-stripped study on LUMIERE's native grids, cut from the template brain in a random pose,
    with a smooth bias field (up to +-20 %) and 2 % noise."""
    import ants
    import numpy as np

    rng = np.random.default_rng(seed)
    brain = ants.image_read(head) * (ants.image_read(mask).numpy() > 0).astype(np.float32)
    centre = np.asarray(ants.get_center_of_mass(brain))
    base_angles, base_shift = rng.uniform(-12, 12, 3), rng.uniform(-10, 10, 3)
    paths = {}
    for modality, (shape, spacing) in LUMIERE_GRIDS.items():
        extent = np.asarray(shape) * np.asarray(spacing)
        grid = ants.make_image(shape, 0.0, spacing=spacing, origin=tuple(centre - extent / 2))
        image = _pose(rng, base_angles, base_shift).apply_to_image(brain, reference=grid, interpolation="linear")
        data = image.numpy()
        if modality in ("T2", "FLAIR"):  # rough contrast inversion inside the brain
            data = np.where(data > 0, 1.4 * data.max() - data, 0.0)
        axes = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
        bias = 1.0 + 0.2 * np.tanh(sum(rng.uniform(-1, 1) * a for a in axes))
        noise = rng.normal(0.0, 0.02 * float(data.max()), shape)
        data = np.where(data > 0, data * bias + noise, 0.0).astype(np.float32)
        paths[modality] = str(out / f"{modality}.nii.gz")
        ants.image_write(image.new_image_like(data), paths[modality])
    return paths


def _worker(args: argparse.Namespace) -> dict:
    """One register job, as the rule's script runs it (configure ITK first, then the job)."""
    from ranoflow.preprocess.image_io import configure_itk
    from ranoflow.preprocess.settings import register_settings

    config = load_config(Path(args.config))
    preprocessing = config["preprocessing"]
    settings = register_settings(preprocessing)
    configure_itk(args.threads, settings["seed"])
    from ranoflow.preprocess.image_io import load_volume, save_volume
    from ranoflow.preprocess.register_job import register_job
    from ranoflow.preprocess.registration import make_atlas_grid

    work = Path(args.work)
    grid = make_atlas_grid(load_volume(args.template_head), load_volume(args.template_mask),
                           preprocessing["spacing_mm"], preprocessing["margin_mm"], preprocessing["registration_mm"])
    grid_paths = {"brain": grid.brain, "brain_mask": grid.mask, "registration_brain": grid.registration}
    for name, image in grid_paths.items():
        save_volume(image, work / f"{name}.nii.gz")
    grid_paths = {name: str(work / f"{name}.nii.gz") for name in grid_paths}
    strip_json = mask_path = None
    strip = settings["skull_strip"]
    if strip is not None:
        strip = strip | {"template_head": args.template_head, "template_mask": args.template_mask}
    elif preprocessing["input"] == "raw":  # separate_job: the skull_strip job's code, in this process too
        from ranoflow.preprocess.skull_strip import skull_strip_job

        strip_json, mask_path = str(work / "skull_strip.json"), str(work / "native_mask.nii.gz")
        skull_strip_job(json.loads(args.images), mask_path, strip_json, preprocessing["skull_strip"],
                        preprocessing["anchor"], args.template_head, args.template_mask)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_start, start = usage.ru_utime + usage.ru_stime, time.perf_counter()
    record = register_job(json.loads(args.images), work / "study", grid_paths, settings, strip_json, mask_path,
                          strip_settings=strip)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return record | {"wall_s": round(time.perf_counter() - start, 1),
                     "cpu_s": round(usage.ru_utime + usage.ru_stime - cpu_start, 1),
                     "peak_mb": round(usage.ru_maxrss / 1024)}


def run_study(config: Path, threads: int, images: dict[str, str], template: tuple[str, str], work: Path) -> dict:
    """The register job in a fresh process (its own start-up, imports and peak memory)."""
    command = [sys.executable, __file__, "--worker", "--config", str(config), "--threads", str(threads),
               "--images", json.dumps(images), "--template-head", template[0], "--template-mask", template[1],
               "--work", str(work)]
    start = time.perf_counter()
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1]) | {"process_s": round(time.perf_counter() - start, 1)}


def measure(config_path: Path, threads: int, keep: Path | None = None) -> dict:
    """Build the study and run it; the job's record with its step seconds (used by cost_model.py)."""
    config = load_config(config_path)
    with tempfile.TemporaryDirectory(prefix="bench_preprocess_") as tmp:
        work = keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        head, mask, note = template_files(config["preprocessing"], work)
        images = make_lumiere_study(work, head, mask)
        record = run_study(config_path, threads, images, (head, mask), work)
    return record | {"template": note}


def report(record: dict, config_path: Path, threads: int) -> None:
    pre = load_config(config_path)["preprocessing"]
    print(f"config {config_path}: registration {pre['registration_mm']} mm, grid {pre['spacing_mm']} mm, "
          f"n4 {pre['n4']}, skull strip {pre['skull_strip']['method']}, {threads} ITK thread(s), "
          f"host load {os.getloadavg()[0]:.1f}")
    print(record["template"])
    print(f"status {record['status']} {record.get('reason') or ''}")
    for step in STEPS:
        print(f"  {step:<13} {record['steps'].get(step, 0.0):>6.1f} s")
    print(f"job {record['wall_s']} s wall, {record['cpu_s']} s CPU; whole process {record['process_s']} s "
          f"(start-up and imports included); peak {record['peak_mb']} MB; "
          f"brain-mask Dice with the atlas {record['dice']}, similarity {record['similarity']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=REPO / "config/lumiere.yaml")
    parser.add_argument("--threads", type=int, default=2, help="ITK threads (deterministic configs use 1)")
    parser.add_argument("--keep", type=Path, help="write the study and its outputs here")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--images", help=argparse.SUPPRESS)
    parser.add_argument("--template-head", help=argparse.SUPPRESS)
    parser.add_argument("--template-mask", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(_worker(args)))
        return
    config = load_config(args.config)
    threads = 1 if config["preprocessing"]["deterministic"] else args.threads
    report(measure(args.config, threads, args.keep), args.config, threads)


if __name__ == "__main__":
    main()
