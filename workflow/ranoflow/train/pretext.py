"""Self-supervised pretraining (the `pretrain` job) on a fold's training pairs only (labels unused), so that
nothing leaks from validation or test patients. Writes the backbone's state dict, which `train_fold` loads."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from ranoflow.train.augment import BatchAugment
from ranoflow.train.datasets import fold_splits, prepare_data
from ranoflow.train.loop import (
    CHECKPOINT,
    epoch_seed,
    fingerprint,
    fit,
    seed_everything,
    select_device,
    train_epoch,
    train_loader,
)
from ranoflow.train.models import PairClassifier, build_backbone
from ranoflow.train.transforms import uses_gamma

log = logging.getLogger(__name__)

N_ROTATIONS = 4
ROTATION_DIMS = (2, 3)  # first two spatial axes of a (batch, channel, x, y, z) tensor: the axial plane


def rotation_targets(generator: torch.Generator):
    """Batch rewriter: rotate each volume by a random multiple of 90 degrees in the axial plane; the
    multiple is the target."""

    def rewrite(batch: dict) -> tuple[dict, torch.Tensor]:
        image = batch["image"]
        k = torch.randint(0, N_ROTATIONS, (image.shape[0],), generator=generator)
        rotated = torch.stack([torch.rot90(img, int(r), dims=(1, 2)) for img, r in zip(image, k)])
        return {**batch, "image": rotated}, k

    return rewrite


def pretrain_fold(
    task: dict,
    pairs: pd.DataFrame,
    folds: dict,
    manifest: pd.DataFrame,
    fold: int,
    weights_path: str | Path,
    summary_path: str | Path,
    store_dir: str | Path,
    threads: int = 1,
    device: str | None = None,
    load: str = "auto",
    memory_mb: int | None = None,
) -> dict:
    """Pretrain the task's backbone on the fold's training pairs; write its state dict to weights_path,
    a history.tsv beside it and a summary JSON to summary_path. Resumes from a checkpoint beside it."""
    if task["method"] != "rotation":
        raise ValueError(f"unknown pretext method {task['method']!r}")
    out = Path(weights_path).parent
    out.mkdir(parents=True, exist_ok=True)
    settings = dict(task["training"])
    # Random flips would make a 90-degree rotation indistinguishable from a 270-degree one.
    settings["augment"] = {**settings["augment"], "flip_prob": 0.0}
    size = settings["image_size"]
    if size[ROTATION_DIMS[0] - 2] != size[ROTATION_DIMS[1] - 2]:
        raise ValueError(f"rotation pretraining needs equal sizes in the axial plane, got image_size {size}")
    torch.set_num_threads(max(threads, 1))
    dev = select_device(device)
    amp = bool(settings["amp"]) and dev.type == "cuda"
    seed_everything(settings["seed"])
    splits = {"train": fold_splits(folds, fold)["train"]}
    log.info(
        "pretext task %s (%s) fold %d on %s: %d training pairs",
        task["name"],
        task["method"],
        fold,
        dev,
        len(splits["train"]),
    )
    experiment = {**task, "clinical": [], "training": settings}
    data = prepare_data(experiment, pairs, manifest, {**splits, "val": [], "test": []}, store_dir, load, memory_mb)

    backbone, dim = build_backbone(task["architecture"], task["in_channels"], size, settings["model_kwargs"])
    model = PairClassifier(backbone, dim, N_ROTATIONS).to(dev)
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings["lr"], weight_decay=settings["weight_decay"])
    scaler = torch.amp.GradScaler(dev.type, enabled=amp)
    unweighted = {**settings, "balance": "none"}
    augment = BatchAugment(settings["augment"], gamma=uses_gamma(experiment["input"]))

    def run_epoch(epoch: int) -> dict:
        seed = epoch_seed(settings["seed"], epoch)
        loader = data.on_device(train_loader(data.train, data.train_labels, unweighted, seed), dev)
        targets = rotation_targets(torch.Generator().manual_seed(seed))
        augment.reseed(seed)
        loss, timer = train_epoch(model, loader, loss_fn, optimizer, scaler, dev, amp, augment, targets)
        return {"train_loss": loss, "chance_loss": math.log(N_ROTATIONS), "data_wait_share": timer.data_share}

    checkpoint = out / CHECKPOINT
    run = fit(
        model, optimizer, scaler, run_epoch, settings["max_epochs"], checkpoint, key={"settings": fingerprint(task, fold, splits), "preprocessed images": data.content}
    )
    torch.save(model.backbone.state_dict(), weights_path)
    pd.DataFrame(run.history).to_csv(out / "history.tsv", sep="\t", index=False, float_format="%.6g")
    summary = {
        "task": task["name"],
        "fold": fold,
        "n_train": len(data.items["train"]),
        "final_loss": run.history[-1]["train_loss"] if run.history else None,
    }
    Path(summary_path).write_text(json.dumps(summary, indent=2))
    checkpoint.unlink(missing_ok=True)
    return summary
