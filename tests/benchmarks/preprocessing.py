"""Benchmark of the preprocess stage: seconds and peak memory per study, per-study design vs naive.

per-study: the workflow's own code (skull strip of the anchor, rigid of every other modality to it
at registration_mm, ONE anchor->atlas registration at registration_mm, one resampling per modality).
naive: one full-resolution atlas registration per modality (ANTs' default Affine schedule), each
modality stripped and resampled on its own (what per-image pipelines such as the paper's do).

Each variant runs in a fresh process (peak RSS is that process's own) with --threads ITK threads.

  python tests/benchmarks/preprocessing.py lumiere            # LUMIERE-sized, Colin27 atlas
  python tests/benchmarks/preprocessing.py demo --study results/demo/LUMIERE/Imaging/Patient-001/week-000 \
      --template results/demo/template
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

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "workflow"))

from ranoflow.vocabulary import MODALITIES  # noqa: E402

COLIN = Path("/usr/share/mricron/templates")
# LUMIERE-like native grids: (shape, spacing mm)
LUMIERE_GRIDS = {
    "CT1": ((180, 220, 190), (1.0, 1.0, 1.0)),
    "T1": ((640, 640, 24), (0.36, 0.36, 6.0)),
    "T2": ((512, 512, 30), (0.45, 0.45, 5.0)),
    "FLAIR": ((640, 640, 24), (0.36, 0.36, 6.0)),
}


def make_lumiere_study(out: Path, seed: int = 3) -> dict[str, str]:
    """A skull-stripped study on LUMIERE's native grids, cut from Colin27 in a random head pose."""
    import ants
    import numpy as np

    rng = np.random.default_rng(seed)
    brain = ants.image_read(str(COLIN / "ch2bet.nii.gz"))
    paths = {}
    base_angles = rng.uniform(-12, 12, 3)
    base_shift = rng.uniform(-10, 10, 3)
    for modality, (shape, spacing) in LUMIERE_GRIDS.items():
        angles = np.deg2rad(base_angles + rng.uniform(-2, 2, 3))  # patient moves a little between sequences
        cx, cy, cz = np.cos(angles)
        sx, sy, sz = np.sin(angles)
        rotation = (
            np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
            @ np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
            @ np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
        ) * 1.04  # a head 4 % larger than the atlas
        transform = ants.create_ants_transform(
            transform_type="AffineTransform", matrix=rotation, translation=base_shift + rng.uniform(-3, 3, 3),
            center=(0.0, 22.0, 9.0),
        )
        extent = np.asarray(shape) * np.asarray(spacing)
        grid = ants.make_image(shape, 0.0, spacing=spacing, origin=tuple(-extent / 2 + np.array([0.0, 22.0, 9.0])))
        image = transform.apply_to_image(brain, reference=grid, interpolation="linear")
        data = image.numpy()
        if modality in ("T2", "FLAIR"):  # rough contrast inversion inside the brain
            data = np.where(data > 0, 140.0 - data, 0.0).astype(np.float32)
        path = out / f"{modality}.nii.gz"
        ants.image_write(image.new_image_like(data.astype(np.float32)), str(path))
        paths[modality] = str(path)
    return paths


def _worker(args: argparse.Namespace) -> dict:
    from ranoflow.preprocess.image_io import configure_itk

    configure_itk(args.threads, 42)
    import ants

    from ranoflow.preprocess import registration as reg
    from ranoflow.preprocess.image_io import load_volume
    from ranoflow.preprocess.skull_strip import brain_mask

    images = json.loads(args.images)
    start = time.perf_counter()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_start = usage.ru_utime + usage.ru_stime
    head, head_mask = load_volume(args.template_head), load_volume(args.template_mask)
    grid = reg.make_atlas_grid(head, head_mask, args.spacing, 5.0, args.registration_mm)
    loaded = {m: load_volume(p) for m, p in images.items()}
    out = Path(tempfile.mkdtemp(prefix=f"bench_{args.variant}_"))
    if args.variant == "per-study":
        anchor = reg.choose_anchor({m: tuple(i.spacing) for m, i in loaded.items()})
        mask = brain_mask(args.strip, loaded[anchor], head, head_mask, "Affine", args.registration_mm)
        result = reg.register_study(loaded, anchor, mask, grid, grid.registration, out, "Affine", args.registration_mm)
        dices = [result.dice]
    else:
        atlas_full = head * reg.nonzero_mask(head_mask)
        dices = []
        for modality, image in loaded.items():
            fixed = head if args.strip == "atlas" else atlas_full
            tx = ants.registration(fixed, image, type_of_transform="Affine", outprefix=f"{out}/{modality}_")
            if args.strip == "atlas":  # the one registration also strips: template mask warped back
                inverse = tx["invtransforms"]
                native = reg.binarise(reg.resample(reg.nonzero_mask(head_mask), image, inverse, "linear",
                                                   reg.inverse_flags(inverse)))
            else:
                native = reg.nonzero_mask(image)
            on_grid = reg.binarise(reg.resample(native, grid.brain, tx["fwdtransforms"], "linear"))
            warped = reg.resample(image * native, grid.brain, tx["fwdtransforms"], "linear") * on_grid
            ants.image_write(reg.zscore_inside(warped, on_grid), f"{out}/{modality}.nii.gz")
            dices.append(reg.dice(on_grid, grid.mask))
    seconds = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime - cpu_start
    return {"variant": args.variant, "seconds": round(seconds, 1), "cpu_seconds": round(cpu, 1),
            "peak_mb": round(usage.ru_maxrss / 1024),
            "dice_mean": round(float(sum(dices) / len(dices)), 4), "dice_min": round(float(min(dices)), 4)}


def _run(variant: str, images: dict[str, str], args: argparse.Namespace, template: tuple[str, str]) -> dict:
    command = [
        sys.executable, __file__, "worker", "--variant", variant, "--images", json.dumps(images),
        "--template-head", template[0], "--template-mask", template[1], "--strip", args.strip,
        "--threads", str(args.threads), "--spacing", str(args.spacing), "--registration-mm", str(args.registration_mm),
    ]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("case", choices=["lumiere", "demo", "worker"])
    parser.add_argument("--study", help="demo: a study folder holding {CT1,T1,T2,FLAIR}.nii.gz")
    parser.add_argument("--template", help="demo: folder with head.nii.gz and brain_mask.nii.gz")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--strip", choices=["passthrough", "atlas"], default=None)
    parser.add_argument("--spacing", type=float, default=None, help="output grid spacing, mm")
    parser.add_argument("--registration-mm", type=float, default=None)
    parser.add_argument("--variants", default="per-study,naive")
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--images", help=argparse.SUPPRESS)
    parser.add_argument("--template-head", help=argparse.SUPPRESS)
    parser.add_argument("--template-mask", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case == "worker":
        print(json.dumps(_worker(args)))
        return
    with tempfile.TemporaryDirectory(prefix="bench_case_") as tmp:
        if args.case == "lumiere":
            defaults = {"strip": "passthrough", "spacing": 1.0, "registration_mm": 2.0}
            template = (str(COLIN / "ch2.nii.gz"), str(COLIN / "ch2bet.nii.gz"))
            images = make_lumiere_study(Path(tmp))
        else:
            defaults = {"strip": "atlas", "spacing": 5.0, "registration_mm": 4.0}
            template = (f"{args.template}/head.nii.gz", f"{args.template}/brain_mask.nii.gz")
            images = {m: f"{args.study}/{m}.nii.gz" for m in MODALITIES if Path(f"{args.study}/{m}.nii.gz").is_file()}
        for key, value in defaults.items():
            if getattr(args, key) is None:
                setattr(args, key, value)
        print(f"case {args.case}: {len(images)} modalities, strip {args.strip}, registration {args.registration_mm} mm, "
              f"grid {args.spacing} mm, {args.threads} ITK threads, host load {os.getloadavg()[0]:.1f}")
        rows = [_run(v, images, args, template) for v in args.variants.split(",")]
    print(f"{'variant':<10} {'wall s':>7} {'CPU s':>7} {'peak MB':>8} {'Dice mean':>10} {'Dice min':>9}")
    for row in rows:
        print(f"{row['variant']:<10} {row['seconds']:>7} {row['cpu_seconds']:>7} {row['peak_mb']:>8} "
              f"{row['dice_mean']:>10} {row['dice_min']:>9}")
    if len(rows) == 2:
        print(f"naive / per-study: {rows[1]['seconds'] / rows[0]['seconds']:.1f}x wall, "
              f"{rows[1]['cpu_seconds'] / rows[0]['cpu_seconds']:.1f}x CPU")


if __name__ == "__main__":
    main()
