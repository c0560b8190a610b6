"""Loader benchmark: does the tensor store keep a GPU busy? The data-wait share of a train step at simulated
GPU step times, with the loader settings of a workflow config (default config/lumiere.yaml: batch 4,
num_workers 4, the weighted sampler) and the train rule's own data path (prepare_data over the store, the
MONAI DataLoader of ranoflow.train.loop, pairs assembled per batch by DeviceBatches).

It writes a synthetic store in the store's format (per study a float16 .npy of 4 modalities and a packed
mask; random values, their content does not matter to the loader) of --studies studies at --size^3 into a
temporary folder, makes one pair per study after each patient's first (LUMIERE: 638 studies, 456 pairs),
and runs --steps steps of the config's first experiment (or --experiment) where each step sleeps
--step-s seconds in place of the GPU's compute. Printed: the store's size on disk and in the job's memory
(measured for the studies written; projected to 638 studies), whether it was read into memory or
memory-mapped (`tensor_store.load` and `resources.train.mem_mb` of the config), and per step time the
data-wait share of a step. Without a GPU the pair assembly runs on the CPU, inside the measured wait.

  python tests/benchmarks/loader.py                       # 638 studies at 128^3 (10.9 GB in a temp dir)
  python tests/benchmarks/loader.py --studies 160         # smaller store, same per-step figures
  python tests/benchmarks/loader.py --load mmap           # force the memory-mapped path
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "workflow"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

LUMIERE_STUDIES = 638
STUDIES_PER_PATIENT = 7  # 638 studies of 91 patients: a pair per study after the first is 547; LUMIERE has 456


def write_synthetic_store(store: Path, n_studies: int, size: int) -> tuple:
    """Store files of n_studies (patients of STUDIES_PER_PATIENT studies), pairs.tsv rows and manifest rows."""
    import numpy as np

    from ranoflow.train.tensor_store import study_files
    from ranoflow.vocabulary import MODALITIES

    rng = np.random.default_rng(0)
    base = rng.standard_normal((len(MODALITIES), size, size, size)).astype(np.float16)
    grid = np.indices((size, size, size)) - (size - 1) / 2
    mask = np.packbits(((grid / (0.42 * size)) ** 2).sum(0).ravel() <= 1)
    manifest, pairs = [], []
    for k in range(n_studies):
        patient, week = f"Patient-{k // STUDIES_PER_PATIENT + 1:03d}", f"week-{k % STUDIES_PER_PATIENT:03d}"
        images, mask_path = study_files(store, patient, week)
        images.parent.mkdir(parents=True, exist_ok=True)
        np.save(images, base + np.float16(k % 17) * np.float16(0.01))
        np.save(mask_path, mask)
        manifest.append({"patient": patient, "study": week, "status": "ok", "dir": str(images.parent),
                         "checksum": str(k)})
        if k % STUDIES_PER_PATIENT:
            pairs.append({"id": f"{patient}_{week}", "patient": patient, "current": week,
                          "previous": f"week-{k % STUDIES_PER_PATIENT - 1:03d}", "label": "CR PR SD PD".split()[k % 4]})
    return pairs, manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=REPO / "config/lumiere.yaml")
    parser.add_argument("--experiment", help="default: the config's first experiment")
    parser.add_argument("--studies", type=int, default=LUMIERE_STUDIES)
    parser.add_argument("--size", type=int, help="cubic grid (default: the config's training.image_size)")
    parser.add_argument("--step-s", type=float, action="append", help="simulated GPU seconds per step (repeatable; "
                        "default 0.1 and 0.2)")
    parser.add_argument("--steps", type=int, default=40, help="timed steps per step time (after 4 warm-up steps)")
    parser.add_argument("--load", choices=["auto", "memory", "mmap"], help="default: the config's tensor_store.load")
    parser.add_argument("--workers", type=int, help="default: the config's training.num_workers")
    parser.add_argument("--dir", type=Path, help="where the temporary store goes (default: the system's temp dir)")
    args = parser.parse_args()

    import pandas as pd
    import torch

    from cost_model import load_config
    from ranoflow.train.datasets import prepare_data
    from ranoflow.train.experiments import resolve_experiment
    from ranoflow.train.loop import loader_workers, select_device
    from ranoflow.train.tensor_store import store_bytes

    config = load_config(args.config)
    name = args.experiment or next(iter(config["experiments"]))
    experiment = resolve_experiment(name, config["experiments"], config["training"])
    settings = experiment["training"]
    if args.workers is not None:
        settings["num_workers"] = args.workers
    size = args.size or settings["image_size"][0]
    settings["image_size"] = [size] * 3
    load = args.load or config["tensor_store"]["load"]
    mem_mb = config["resources"]["train"]["mem_mb"]
    device = select_device()
    with tempfile.TemporaryDirectory(prefix="bench_store_", dir=args.dir) as tmp:
        store = Path(tmp)
        t0 = time.perf_counter()
        pairs, manifest = write_synthetic_store(store, args.studies, size)
        written_s = time.perf_counter() - t0
        disk = sum(f.stat().st_size for f in store.rglob("*.npy"))
        pairs_df = pd.DataFrame(pairs).assign(modalities="CT1,T1,T2,FLAIR")
        manifest_df = pd.DataFrame(manifest)
        # pair_items looks for the modalities' NIfTI files in the study's folder: stand-ins of 0 bytes
        for row in manifest:
            Path(row["dir"], row["study"]).mkdir(exist_ok=True)
            for m in experiment["modalities"]:
                (Path(row["dir"], row["study"]) / f"{m}.nii.gz").touch()
        manifest_df["dir"] = [str(Path(r["dir"], r["study"])) for r in manifest]
        t0 = time.perf_counter()
        data = prepare_data(experiment, pairs_df, manifest_df, {"train": pairs_df["id"].tolist(), "val": [],
                                                                   "test": []}, store, load, mem_mb)
        open_s = time.perf_counter() - t0
        resident = sum(a.nbytes for a, _, _ in data.train._open.values()) if data.train.in_memory else 0
        print(f"loader benchmark, {args.config} experiment {name} ({', '.join(experiment['modalities'])}, "
              f"{experiment['input']}, references {experiment['references']}): batch {settings['batch_size']}, "
              f"num_workers {settings['num_workers']} ({loader_workers(data.train, settings)} for this store: "
              f"{'read in the training process' if data.train.in_memory else 'worker processes'}), "
              f"tensor_store.load {load}, resources.train.mem_mb {mem_mb}, "
              f"device {device}")
        print(f"store: {args.studies} studies x 4 modalities at {size}^3 float16 + packed masks: "
              f"{disk / 1e9:.2f} GB on disk [measured; written in {written_s:.0f} s]; projected to "
              f"{LUMIERE_STUDIES} studies: {store_bytes(LUMIERE_STUDIES, [size] * 3) / 1e9:.2f} GB on disk "
              f"[projected: x {LUMIERE_STUDIES}/{args.studies}]")
        print(f"job memory: {'read into memory' if data.train.in_memory else 'memory-mapped'}, "
              f"{resident / 1e9:.2f} GB resident for the {len(data.train._open) if data.train.in_memory else 0} "
              f"studies of {len(pairs)} pairs ({len(experiment['modalities'])} modalities) [measured, opened in "
              f"{open_s:.0f} s]; at {LUMIERE_STUDIES} studies: {data.train.nbytes() / args.studies * LUMIERE_STUDIES / 1e9:.2f}"
              f" GB [projected]")
        print(f"host load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        for step_s in args.step_s or [0.1, 0.2]:
            for assembled in (True, False):
                share, per_step, steps = time_steps(data, settings, device, step_s, args.steps, assembled)
                where = (f"pairs assembled on {device.type}" if assembled else
                         f"batches as the prefetch thread hands them over on {device.type} (a GPU's wait: there "
                         "the pair assembly is device compute)")
                print(f"simulated GPU step {step_s:.2f} s per batch of {settings['batch_size']}, {where}: data wait "
                      f"{100 * share:.1f} % of a step over {steps} steps ({1000 * per_step:.1f} ms per step) [measured]")


def time_steps(data, settings: dict, device, step_s: float, steps: int, assembled: bool) -> tuple[float, float, int]:
    """Data-wait share, wait per step and steps timed, over as many epochs as `steps` needs (4 warm-up steps)."""
    import torch

    from ranoflow.train.loop import StepTimer, train_loader
    from ranoflow.train.prefetch import prefetched

    timer, done, epoch = StepTimer(), -4, 0
    while done < steps:
        loader = train_loader(data.train, data.train_labels, settings, seed=epoch)
        batches = data.on_device(loader, device) if assembled else prefetched(loader, device)
        for _ in timer.iterate(batches):
            if device.type == "cuda":
                torch.cuda.synchronize()
            time.sleep(step_s)  # the GPU's forward and backward pass
            done += 1
            if done == 0:  # warm-up over: worker start-up and the first pages read
                timer.data = timer.compute = 0.0
                timer.steps = -1  # the step now running is counted when it ends
            if done >= steps:
                break
        epoch += 1
    return timer.data_share, timer.data / max(timer.steps, 1), timer.steps


if __name__ == "__main__":
    main()
