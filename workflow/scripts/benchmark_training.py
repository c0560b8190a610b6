"""Training throughput: steps per second and the share of each step spent waiting for data.

Runs the real pipeline (cached MONAI dataset, weighted sampler, on-device augmentation, AdamW step) on random
preprocessed-like study folders written to a temporary directory. Prints figures; not a test.

    python workflow/scripts/benchmark_training.py                 # demo size and DenseNet264 at 128^3 on CPU
    python workflow/scripts/benchmark_training.py --cases gpu     # DenseNet264 at 128^3 on CUDA with AMP
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from ranoflow import experiments, pair_dataset, training  # noqa: E402
from ranoflow.models import build_model  # noqa: E402

DEMO_MODEL = {"init_features": 16, "growth_rate": 8, "block_config": [2, 4, 6, 4]}
CASES = {
    # name: (architecture, modalities, image size, model kwargs, device, default batch size, study grid)
    "demo": ("densenet121", ["CT1", "T1", "T2", "FLAIR"], 32, DEMO_MODEL, "cpu", 4, 40),
    "densenet264-128-cpu": ("densenet264", ["T1", "T2", "FLAIR"], 128, {}, "cpu", 2, 128),
    "gpu": ("densenet264", ["T1", "T2", "FLAIR"], 128, {}, "cuda", 4, 128),
}


def write_studies(root: Path, n_pairs: int, grid: int, modalities: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """n_pairs pairs of random studies (float32 images + brain mask) on a grid^3 atlas grid."""
    rng = np.random.default_rng(0)
    axis = np.linspace(-1, 1, grid)
    brain = (np.add.outer(np.add.outer(axis**2, axis**2), axis**2) < 0.8).astype(np.uint8)
    pairs, manifest = [], []
    for i in range(n_pairs):
        patient = f"Patient-{i:03d}"
        for study in ("week-000", "week-010"):
            folder = root / patient / study
            folder.mkdir(parents=True)
            for m in modalities:
                image = (rng.standard_normal(brain.shape, dtype=np.float32) * brain).astype(np.float32)
                nib.save(nib.Nifti1Image(image, np.eye(4)), folder / f"{m}.nii.gz")
            nib.save(nib.Nifti1Image(brain, np.eye(4)), folder / "brain_mask.nii.gz")
            manifest.append({"patient": patient, "study": study, "status": "ok", "dir": str(folder)})
        pairs.append({"id": f"{patient}_week-010_vs_week-000", "patient": patient, "current": "week-010",
                      "previous": "week-000", "label": pair_dataset.CLASSES[i % 4], "weeks_between": "10"})
    return pd.DataFrame(pairs), pd.DataFrame(manifest)


def run_case(name: str, steps: int, batch: int | None, threads: int, workers: int) -> dict:
    architecture, modalities, size, kwargs, device, default_batch, grid = CASES[name]
    if device == "cuda" and not torch.cuda.is_available():
        return {"case": name, "skipped": "no CUDA device"}
    batch = batch or default_batch
    torch.set_num_threads(threads)
    settings = {"image_size": [size] * 3, "batch_size": batch, "model_kwargs": kwargs, "num_workers": workers}
    exp = experiments.resolve_experiment(name, {name: {"modalities": modalities, "input": "stack",
                                                       "architecture": architecture}}, settings)
    with tempfile.TemporaryDirectory() as tmp:
        pairs, manifest = write_studies(Path(tmp), batch * (steps + 1), grid, modalities)
        ids = pairs["id"].tolist()
        t0 = time.perf_counter()
        data = training.prepare_data(exp, pairs, manifest, {"train": ids, "val": [], "test": []}, threads)
        cache_seconds = time.perf_counter() - t0
        dev = torch.device(device)
        amp = device == "cuda"
        model = build_model(architecture, exp["in_channels"], 4, [size] * 3, model_kwargs=kwargs).to(dev)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
        scaler = torch.amp.GradScaler(dev.type, enabled=amp)
        loss = nn.CrossEntropyLoss(weight=pair_dataset.class_weights(data.train_labels).to(dev))
        run = exp["training"] | {"weighted_sampler": True}
        augment = pair_dataset.BatchAugment(exp["training"]["augment"])
        warm = pair_dataset.view(data.train, range(batch))
        training.train_epoch(model, training.train_loader(warm, data.train_labels[:batch], run, 0), loss,
                             optimizer, scaler, dev, amp, augment)
        timed = pair_dataset.view(data.train, range(batch, batch * (steps + 1)))
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        _, timer = training.train_epoch(model, training.train_loader(timed, data.train_labels[batch:], run, 1),
                                        loss, optimizer, scaler, dev, amp, augment)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
    return {
        "case": name, "device": torch.cuda.get_device_name(0) if dev.type == "cuda" else f"cpu x{threads}",
        "architecture": architecture, "image_size": size, "channels": exp["in_channels"], "batch": batch,
        "amp": amp, "steps": timer.steps, "steps_per_s": round(timer.steps / seconds, 3),
        "seconds_per_step": round(seconds / max(timer.steps, 1), 3),
        "data_wait_share": round(timer.data_share, 4), "cache_build_s": round(cache_seconds, 1),
        "peak_gpu_mb": round(torch.cuda.max_memory_allocated() / 2**20) if dev.type == "cuda" else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=["demo", "densenet264-128-cpu", "gpu"])
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default: 20 demo, 3 otherwise)")
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    args = parser.parse_args()
    for name in args.cases:
        steps = args.steps or (20 if name == "demo" else 3)
        print(json.dumps(run_case(name, steps, args.batch, args.threads, args.workers)), flush=True)


if __name__ == "__main__":
    main()
