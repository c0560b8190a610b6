"""Training benchmark: steps/s and the data-wait share of the train loop, with the train rule's own code
(prepare_data, build_model, train_loader, BatchAugment, train_epoch with GradScaler/autocast, as
ranoflow.train.fold runs them) and one experiment's settings from a workflow config.

The data are synthetic preprocessed studies (tests/train_helpers.py) resized by the experiment's own
transform; the cache is the config's (disk caches go to a temporary folder). One epoch warms up (model
allocation, cache fill), the next is timed. On CUDA, mixed precision follows `training: amp` and the
peak GPU memory is printed; on CPU the loop runs in float32 as the rule does.

  python tests/benchmarks/training.py                                   # demo: config/config.yaml, CPU
  python tests/benchmarks/training.py --config config/lumiere.yaml --experiment paper_best --batch-size 1
  python tests/benchmarks/training.py --config config/lumiere.yaml --device cuda     # on a GPU node
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "workflow"))
sys.path.insert(0, str(REPO / "tests"))


def load_experiment(config_path: Path, name: str | None = None, overrides: dict | None = None) -> dict:
    """One experiment resolved as the train rule gets it (schema defaults filled in), with training
    overrides (e.g. {"batch_size": 1}) applied on top."""
    import yaml
    from snakemake.utils import validate

    from ranoflow.train.experiments import resolve_experiment, to_plain

    config = yaml.safe_load(config_path.read_text())
    validate(config, str(REPO / "workflow/schemas/config.schema.yaml"), set_default=True)
    config = to_plain(config)
    name = name or next(iter(config["experiments"]))
    experiment = resolve_experiment(name, config["experiments"], config["training"])
    experiment["training"].update(overrides or {})
    return experiment


def synthetic_data(root: Path, experiment: dict, n_pairs: int):
    """The train split of n_pairs synthetic pairs through the experiment's own data preparation."""
    import pandas as pd

    from ranoflow.train.datasets import prepare_data
    from train_helpers import make_dataset, make_store

    paths = make_dataset(root, n_patients=max(2, (n_pairs + 1) // 2), pairs_per_patient=2, shape=(48, 48, 48))
    store = make_store(paths, experiment["training"]["image_size"], experiment["training"]["fit"])
    pairs = pd.read_csv(paths["pairs"], sep="\t", dtype=str, keep_default_na=False)
    pairs["weeks_between"] = pairs["weeks_between"].astype(int)
    manifest = pd.read_csv(paths["manifest"], sep="\t", dtype=str, keep_default_na=False)
    ids = pairs["id"].tolist()[:n_pairs]
    return prepare_data(experiment, pairs, manifest, {"train": ids, "val": [], "test": []}, store)


def time_train_loop(experiment: dict, device: str, steps: int, threads: int) -> dict:
    """Seconds per step, steps/s, data-wait share and peak GPU memory of one timed epoch of `steps` steps."""
    import torch
    from torch import nn

    from ranoflow.train.augment import BatchAugment
    from ranoflow.train.datasets import class_weights
    from ranoflow.train.loop import select_device, train_epoch, train_loader
    from ranoflow.train.models import build_model
    from ranoflow.train.transforms import uses_gamma
    from ranoflow.vocabulary import CLASSES

    settings = experiment["training"]
    torch.set_num_threads(max(threads, 1))
    dev = select_device(device)
    amp = bool(settings["amp"]) and dev.type == "cuda"  # as ranoflow.train.fold decides
    with tempfile.TemporaryDirectory(prefix="bench_train_") as tmp:
        data = synthetic_data(Path(tmp), experiment, steps * settings["batch_size"] + 1)
        model = build_model(experiment["architecture"], experiment["in_channels"], len(CLASSES),
                            settings["image_size"], data.clinical_dim, settings["clinical_hidden"],
                            settings["model_kwargs"]).to(dev)
        loss_fn = nn.CrossEntropyLoss(weight=class_weights(data.train_labels).to(dev))
        optimizer = torch.optim.AdamW(model.parameters(), lr=settings["lr"], weight_decay=settings["weight_decay"])
        scaler = torch.amp.GradScaler(dev.type, enabled=amp)
        augment = BatchAugment(settings["augment"], gamma=uses_gamma(experiment["input"]))
        for epoch in range(2):  # the first epoch warms up; the second is measured
            loader = data.on_device(train_loader(data.train, data.train_labels, settings, seed=epoch), dev)
            if dev.type == "cuda":
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            start = time.perf_counter()
            _, timer = train_epoch(model, loader, loss_fn, optimizer, scaler, dev, amp, augment)
            if dev.type == "cuda":
                torch.cuda.synchronize()
            seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() / 2**20 if dev.type == "cuda" else None
    return {
        "experiment": experiment["name"], "architecture": experiment["architecture"],
        "image_size": settings["image_size"], "batch_size": settings["batch_size"],
        "in_channels": experiment["in_channels"], "device": str(dev), "amp": amp, "threads": threads,
        "steps": timer.steps, "step_s": round(seconds / max(timer.steps, 1), 3),
        "steps_per_s": round(timer.steps / seconds, 3), "data_wait_share": round(timer.data_share, 4),
        "peak_gpu_mb": round(peak) if peak is not None else None,
    }


def describe(row: dict) -> str:
    size = "x".join(map(str, row["image_size"]))
    peak = f", peak GPU memory {row['peak_gpu_mb']} MB" if row["peak_gpu_mb"] is not None else ""
    return (f"{row['experiment']} ({row['architecture']}, {size}, batch {row['batch_size']}, "
            f"{row['in_channels']} channels) on {row['device']}{' with AMP' if row['amp'] else ''}, "
            f"{row['threads']} thread(s): {row['steps_per_s']} steps/s ({row['step_s']} s per step over "
            f"{row['steps']} steps), data wait {100 * row['data_wait_share']:.1f} % of a step{peak}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=REPO / "config/config.yaml")
    parser.add_argument("--experiment", help="default: the config's first experiment")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--steps", type=int, default=6, help="timed steps (one more epoch of them warms up)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (the train rule's `threads`)")
    parser.add_argument("--batch-size", type=int, help="override the config's batch size")
    parser.add_argument("--image-size", type=int, help="override the config's image size (cubic)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON line")
    args = parser.parse_args()
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: no CUDA device is available here (torch.cuda.is_available() is False)")
    overrides = {}
    if args.batch_size:
        overrides["batch_size"] = args.batch_size
    if args.image_size:
        overrides["image_size"] = [args.image_size] * 3
    experiment = load_experiment(args.config, args.experiment, overrides)
    row = time_train_loop(experiment, None if args.device == "auto" else args.device, args.steps, args.threads)
    print(json.dumps(row) if args.json else describe(row))


if __name__ == "__main__":
    main()
