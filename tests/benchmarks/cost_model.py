"""Cost model of a workflow config's grid (default config/lumiere.yaml): CPU-hours of preprocessing,
GPU-hours of training, and what a cluster user budgets besides: disk (preprocessed images, the tensor
store, checkpoints) and memory per train job; each figure marked [measured] or [projected: from what].

Measured here:
  * one LUMIERE-sized study through the register job (tests/benchmarks/preprocessing.py): CPU seconds;
  * per architecture of the grid at the configured image size: forward FLOPs per pair (torch's
    FlopCounterMode) and the seconds of one train step (tests/benchmarks/training.py's loop, the train
    rule's code) on the device available: CUDA with the config's AMP setting at the configured batch
    size, or CPU at batch 1 (scaled by the batch size; --cpu-archs limits which are timed on CPU).
Projected from those:
  * steps per epoch from the pair count (default LUMIERE's 456 scorable pairs): train pairs per fold =
    pairs x (k-1)/k x (1 - val_fraction); validation and test pairs cost one forward pass each;
  * GPU seconds per step without a GPU measurement: 3 x forward FLOPs x batch / --gpu-tflops
    (an assumed effective throughput of 3D CNN training with AMP on an H100/H200-class card; replace it
    with a measurement: --gpu-step-s densenet264=0.3, from tests/benchmarks/gpu_check.py);
  * hours = runs (experiments x folds, pretext tasks x folds) x epochs x seconds per epoch; the table
    says how they scale with folds, experiments, epochs and image size (FLOPs grow with the voxels).

  python tests/benchmarks/cost_model.py                        # measures, then prints the model
  python tests/benchmarks/cost_model.py --preprocess-cpu-s 30 --cpu-archs none   # reuse figures, no CPU timing

Disk and memory (projected from the config): preprocessed images on the atlas grid, the tensor store of every
study at training.image_size (and the per-pair cache of earlier versions it replaced), the kept model
weights and the running jobs' checkpoints, and the memory of a train job reading the store.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "workflow"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ranoflow.train.seeds import run_seeds  # noqa: E402

LUMIERE_STUDIES = 638
LUMIERE_PAIRS = 456


def load_config(path: Path) -> dict:
    import yaml
    from snakemake.utils import validate

    from ranoflow.train.experiments import to_plain

    config = yaml.safe_load(path.read_text())
    validate(config, str(REPO / "workflow/schemas/config.schema.yaml"), set_default=True)
    return to_plain(config)


def grid_runs(config: dict) -> list[dict]:
    """One row per training run kind of the grid: experiments and pretext tasks actually used."""
    from ranoflow.train.experiments import pretext_tasks_used, resolve_experiments, resolve_pretext_task

    experiments = resolve_experiments(config["experiments"], config["training"])
    runs = [{"name": n, "architecture": e["architecture"], "in_channels": e["in_channels"],
             "training": e["training"], "kind": "train", "resolved": e} for n, e in experiments.items()]
    for task in pretext_tasks_used(experiments):
        t = resolve_pretext_task(task, config["training"])
        runs.append({"name": task, "architecture": t["architecture"], "in_channels": t["in_channels"],
                     "training": t["training"], "kind": "pretrain", "resolved": t})
    return runs


def run_model(run: dict):
    """The network of a run as the train job builds it (a shared encoder reads each study)."""
    from ranoflow.train.models import model_for

    return model_for(run["resolved"], 0)


def model_key(run: dict) -> tuple:
    t = run["training"]
    return (run["architecture"], run["in_channels"], tuple(t["image_size"]), t.get("encoder", "joint"),
            t.get("head", "features"))


def forward_flops(run: dict) -> float:
    """FLOPs of one pair's forward pass at the configured image size (counted, not timed)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    model = run_model(run).eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.zeros(1, run["in_channels"], *run["training"]["image_size"]), None)
    return float(counter.get_total_flops())


def measured_step_s(run: dict, config_path: Path, device: str, threads: int) -> tuple[float, str]:
    """Seconds of one train step of this run at the configured batch size, and how it was obtained."""
    from training import load_experiment, time_train_loop

    batch = run["training"]["batch_size"]
    overrides = {"batch_size": 1} if device == "cpu" else {}
    experiment = load_experiment(config_path, run["name"] if run["kind"] == "train" else None, overrides)
    experiment.update(architecture=run["architecture"])
    row = time_train_loop(experiment, device, steps=1, threads=threads)
    if device == "cpu":
        return row["step_s"] * batch, f"measured on CPU ({threads} threads) at batch 1, x{batch}"
    return row["step_s"], f"measured on {row['device']}{' with AMP' if row['amp'] else ''} at batch {batch}"


def epoch_plan(config: dict, pairs: int) -> dict:
    k, val = config["folds"]["k"], config["folds"]["val_fraction"]
    train = pairs * (k - 1) / k * (1 - val)
    return {"k": k, "train_pairs": train, "val_pairs": pairs * (k - 1) / k * val, "test_pairs": pairs / k}


SRI24_EXTENT_MM = (240, 240, 155)  # the atlas space LUMIERE's images are registered to
PREPROCESSED_FILES = 6  # per study on the atlas grid: 4 modalities, brain mask, tumour segmentation


def footprint(config: dict, runs: list[dict], studies: int, pairs: int, k: int) -> None:
    """Disk of preprocessed images, tensor store (and the per-pair cache it replaced), checkpoints; memory
    per train job. All projected from the config (the store's file format is exact: see tensor_store)."""
    import numpy as np

    from ranoflow.train.experiments import canonical_references
    from ranoflow.train.tensor_store import store_bytes

    spacing = float(config["preprocessing"]["spacing_mm"])
    atlas = [math.ceil(e / spacing) for e in SRI24_EXTENT_MM]
    preprocessed = studies * PREPROCESSED_FILES * int(np.prod(atlas)) * 4
    size = config["training"]["image_size"]
    voxels = int(np.prod(size))
    store = store_bytes(studies, size)
    experiments = {r["name"]: r for r in runs if r["kind"] == "train"}
    combos = {}
    for name, e in config["experiments"].items():
        refs = canonical_references(e.get("references"))
        key = (tuple(sorted(e["modalities"])), e["input"], tuple(refs))
        combos[key] = experiments[name]["in_channels"]
    old_cache = pairs * sum(combos.values()) * voxels * 4
    print(f"\ndisk and memory ({studies} studies, {pairs} pairs, {len(experiments)} experiments):")
    print(f"  preprocessed images: {preprocessed / 1e9:.1f} GB uncompressed float32, less as .nii.gz "
          f"[projected: {studies} studies x {PREPROCESSED_FILES} volumes x {'x'.join(map(str, atlas))} voxels "
          f"(SRI24's {SRI24_EXTENT_MM} mm at {spacing:g} mm)]")
    print(f"  training data, the tensor store (results/tensors): {store / 1e9:.1f} GB for the whole grid "
          f"[projected: {studies} studies x (4 modalities x {voxels} voxels x 2 bytes + packed mask), the "
          f"store's exact file sizes; tests/benchmarks/loader.py measures them]")
    print(f"    before it, the per-pair cache (training.cache: disk): {old_cache / 1e9:.0f} GB "
          f"[projected: {pairs} pairs x {sum(combos.values())} channels over the {len(combos)} distinct input "
          f"combinations x {voxels} voxels x 4 bytes]")
    params: dict[tuple, int] = {}
    checkpoints, trained = 0, 0
    for run in runs:
        key = model_key(run)
        if key not in params:
            params[key] = sum(p.numel() for p in run_model(run).parameters())
        seeds = len(run_seeds(run)) if run["kind"] == "train" else 1  # one model.pt per fold and seed
        trained += k * seeds
        checkpoints += k * seeds * params[key] * 4  # model.pt (or backbone.pt) kept per run, fold and seed
    largest = max(params.values())
    print(f"  checkpoints: {checkpoints / 1e9:.2f} GB of model.pt/backbone.pt kept for {len(runs)} runs x {k} folds "
          f"x their seeds ({trained} models), "
          f"plus a checkpoint.pt of up to {3 * largest * 4 / 1e9:.2f} GB per running job (weights and AdamW's two "
          f"moments; deleted when the job ends) [projected: parameters x 4 bytes]")
    largest_exp = max(experiments.values(), key=lambda r: r["in_channels"])
    exp = config["experiments"][largest_exp["name"]]
    n_mods = len(exp["modalities"])
    sides = 1 + len(canonical_references(exp.get("references")))
    in_memory = studies * (n_mods * voxels * 2 + voxels // 8)
    t = largest_exp["training"]
    batches = t["batch_size"] * max(t["num_workers"], 1) * 2 * sides * n_mods * voxels * 2
    job_mb = config["resources"]["train"]["mem_mb"]
    print(f"  memory per train job: {in_memory / 1e9:.1f} GB of store read into memory (at most {n_mods} "
          f"modalities of every study, experiment {largest_exp['name']}) + {batches / 1e9:.2f} GB of prefetched "
          f"batches ({max(t['num_workers'], 1)} workers x 2) + about 3 GB for torch and CUDA = "
          f"{in_memory / 1e9 + batches / 1e9 + 3:.1f} GB of resources.train.mem_mb {job_mb / 1000:.0f} GB "
          f"[projected]; tensor_store.load auto memory-maps the store when it takes more than half of mem_mb")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=REPO / "config/lumiere.yaml")
    parser.add_argument("--studies", type=int, default=LUMIERE_STUDIES)
    parser.add_argument("--pairs", type=int, default=LUMIERE_PAIRS)
    parser.add_argument("--cores", type=int, default=2, help="cores for the preprocessing wall-time line")
    parser.add_argument("--preprocess-cpu-s", type=float, help="CPU s per study (skip the measurement)")
    parser.add_argument("--cpu-archs", default="densenet264",
                        help="architectures timed on CPU ('all', 'none' or a comma list); others use FLOPs only")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads for the CPU timing")
    parser.add_argument("--gpu-tflops", type=float, default=15.0,
                        help="assumed effective TFLOP/s of 3D CNN training with AMP on one H100/H200-class GPU (DenseNets "
                        "are bound by the memory traffic of normalisation and concatenation, far below peak)")
    parser.add_argument("--gpu-step-s", action="append", default=[],
                        help="measured GPU seconds per step, ARCH=S (repeatable; tests/benchmarks/gpu_check.py prints them)")
    parser.add_argument("--epochs", type=float, help="epochs per run (default: the config's max_epochs)")
    args = parser.parse_args()
    import torch

    config = load_config(args.config)
    runs = grid_runs(config)
    plan = epoch_plan(config, args.pairs)
    gpu_given = dict(item.split("=", 1) for item in args.gpu_step_s)
    cuda = torch.cuda.is_available()

    print(f"cost model of {args.config} ({args.studies} studies, {args.pairs} pairs, {plan['k']} folds)")
    if args.preprocess_cpu_s is None:
        from preprocessing import measure

        record = measure(args.config, threads=1)
        cpu_s, source = record["cpu_s"], f"measured: one LUMIERE-sized study, {record['template']}"
    else:
        cpu_s, source = args.preprocess_cpu_s, "given with --preprocess-cpu-s"
    cpu_h = args.studies * cpu_s / 3600
    print(f"\npreprocessing: {cpu_s:.1f} CPU s per study [{source}]")
    print(f"  {args.studies} studies: {cpu_h:.1f} CPU-hours [projected: x {args.studies} studies]; "
          f"{cpu_h / args.cores:.1f} h wall on {args.cores} cores, {cpu_h / 32:.2f} h on 32 "
          f"[projected: one single-threaded job per core]")

    print(f"\ntraining: {plan['train_pairs']:.0f} train, {plan['val_pairs']:.0f} validation, "
          f"{plan['test_pairs']:.0f} test pairs per fold [projected: {args.pairs} pairs x {plan['k'] - 1}/{plan['k']}"
          f" x (1 - val_fraction {config['folds']['val_fraction']})]")
    timed = {a for a in args.cpu_archs.split(",")} if args.cpu_archs not in ("all", "none") else None
    per_arch: dict[tuple, dict] = {}
    cpu_timed: set[str] = set()
    total_h = 0.0
    print(f"{'run':<24} {'arch':<16} {'size':>7} {'batch':>5} {'GFLOP/pair':>10} {'s/step':>7} "
          f"{'steps/ep':>8} {'epochs':>6} {'GPU-h (all runs)':>17}  source of s/step")
    for run in runs:
        t = run["training"]
        key = (*model_key(run), t["batch_size"])
        if key not in per_arch:
            flops = forward_flops(run)
            if run["architecture"] in gpu_given:
                step, how = float(gpu_given[run["architecture"]]), "measured on GPU (given)"
            elif cuda:
                step, how = measured_step_s(run, args.config, "cuda", args.threads)
            else:
                step = 3 * flops * t["batch_size"] / (args.gpu_tflops * 1e12)
                how = f"projected: 3 x FLOPs x batch / {args.gpu_tflops:g} TFLOP/s (assumed)"
                wanted = args.cpu_archs == "all" or (timed and run["architecture"] in timed)
                if wanted and run["architecture"] not in cpu_timed:  # once per architecture: minutes each
                    cpu_step, cpu_how = measured_step_s(run, args.config, "cpu", args.threads)
                    cpu_timed.add(run["architecture"])
                    how += f"; CPU {cpu_step:.1f} s/step [{cpu_how}]"
            per_arch[key] = {"flops": flops, "step": step, "how": how}
        info = per_arch[key]
        steps = math.ceil(plan["train_pairs"] / t["batch_size"])
        eval_s = (plan["val_pairs"] + (plan["test_pairs"] if run["kind"] == "train" else 0)) * info["step"] / (
            3 * t["batch_size"])  # a forward pass is about a third of a train step
        epochs = args.epochs or t["max_epochs"]
        seeds = len(run_seeds(run)) if run["kind"] == "train" else 1  # training.seeds: one run per fold x seed
        hours = seeds * plan["k"] * epochs * (steps * info["step"] + eval_s) / 3600
        total_h += hours
        size = "x".join(map(str, t["image_size"][:1])) + "^3"
        print(f"{run['name']:<24} {run['architecture']:<16} {size:>7} {t['batch_size']:>5} "
              f"{info['flops'] / 1e9:>10.0f} {info['step']:>7.3f} {steps:>8} {epochs:>6g} {hours:>17.2f}  {info['how']}")
    print(f"\nwhole grid: {total_h:.1f} GPU-hours on one GPU [projected: the rows above, "
          f"{len([r for r in runs if r['kind'] == 'train'])} experiments + "
          f"{len([r for r in runs if r['kind'] == 'pretrain'])} pretext task(s), x {plan['k']} folds x each "
          f"experiment's seeds, at max_epochs]")
    print("scaling: proportional to folds, to experiments, to epochs per run (early stopping ends runs "
          "earlier), and to voxels for the convolutional networks (96^3 ~ 0.42x, 64^3 ~ 0.125x of 128^3)")
    if total_h > 24:
        for factor, what in ((0.5, "early stopping at about half of max_epochs"),
                             (0.42, "image_size 96^3"), (0.5 * 0.42, "both")):
            print(f"  {what}: {total_h * factor:.1f} GPU-hours")
    footprint(config, runs, args.studies, args.pairs, plan["k"])
    print("The data loader must keep up: each step reads batch x studies x modalities x voxels x 2 bytes from the "
          "tensor store (in memory where it fits); tests/benchmarks/loader.py measures the data-wait share.")


if __name__ == "__main__":
    main()
