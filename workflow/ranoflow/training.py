"""Training of one experiment on one fold: AdamW, class-weighted cross-entropy, lr / 10 on plateau,
early stopping on the validation balanced accuracy, a checkpoint every epoch and resume from it."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import random
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata as importlib_metadata
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from monai.data import DataLoader, Dataset
from torch import nn

from . import clinical as clin
from . import metrics as met
from . import pair_dataset as pdata
from .models import build_model, load_backbone_weights

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"
PACKAGES = ("torch", "monai", "numpy", "pandas", "scikit-learn", "nibabel", "snakemake")


# ----------------------------------------------------------------------------------------- setup
def select_device(requested: str | None = None) -> torch.device:
    """CUDA when available (or as requested), else CPU."""
    if requested:
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def epoch_seed(seed: int, epoch: int) -> int:
    """Seed of one epoch: an epoch's sampling and augmentation do not depend on earlier epochs, so a
    resumed run draws exactly what an uninterrupted one would."""
    return seed * 100_003 + epoch


def fingerprint(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def run_metadata(settings: dict, device: torch.device, threads: int) -> dict:
    """Versions, commit and settings recorded next to every model."""
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = importlib_metadata.version(package)
        except importlib_metadata.PackageNotFoundError:
            versions[package] = None
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None
    return {
        "python": platform.python_version(),
        "packages": versions,
        "git_commit": commit,
        "host": platform.node(),
        "device": str(device),
        "cuda_device": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "threads": threads,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **settings,
    }


# ------------------------------------------------------------------------------------------ data
@dataclass
class FoldData:
    """Cached datasets of one fold and the pairs left out of it."""

    train: Dataset
    val: Dataset
    test: Dataset
    train_labels: list[int]
    items: dict[str, list[dict]]
    left_out: pd.DataFrame
    clinical_dim: int


def fold_splits(folds: dict, fold: int) -> dict[str, list[str]]:
    entry = next((f for f in folds["folds"] if int(f["fold"]) == fold), None)
    if entry is None:
        raise ValueError(f"fold {fold} is not in folds.json (k={folds.get('k')})")
    return {split: list(entry[split]) for split in ("train", "val", "test")}


def prepare_data(
    experiment: dict, pairs: pd.DataFrame, manifest: pd.DataFrame, splits: dict[str, list[str]], threads: int = 0
) -> FoldData:
    """Items of each split and one cache of their preprocessed tensors (augmentation runs on the batch)."""
    settings = experiment["training"]
    fields = experiment.get("clinical", [])
    items, left = {}, []
    for split, ids in splits.items():
        items[split], out = pdata.pair_items(
            pairs, manifest, ids, experiment["modalities"], fields, settings["use_flagged"]
        )
        left.append(out.assign(split=split))
        if not items[split] and ids:
            raise ValueError(f"no usable pair in the {split} split (all {len(ids)} left out: {out['reason'].iloc[0]})")
    left_out = pd.concat(left, ignore_index=True)
    for row in left_out.itertuples():
        log.warning("left out %s (%s): %s", row.id, row.split, row.reason)

    unique: dict[str, dict] = {}
    for split_items in items.values():
        for item in split_items:
            unique.setdefault(item["id"], item)
    order = list(unique)
    cache_dir = Path(settings["cache_dir"]) / "pairs"
    transform = pdata.preprocess_transform(
        experiment["modalities"], experiment["input"], settings["image_size"], settings["fit"]
    )
    t0 = time.perf_counter()
    cache_key = json.dumps(
        [experiment["modalities"], experiment["input"], settings["image_size"], settings["fit"]], sort_keys=True
    )
    cached = pdata.cached_dataset(
        [unique[i] for i in order], transform, settings["cache"], cache_dir, threads, cache_key
    )
    log.info("prepared %d pairs (%s cache) in %.1f s", len(order), settings["cache"], time.perf_counter() - t0)
    index = {pair_id: i for i, pair_id in enumerate(order)}
    return FoldData(
        train=pdata.view(cached, [index[i["id"]] for i in items["train"]]),
        val=pdata.view(cached, [index[i["id"]] for i in items["val"]]),
        test=pdata.view(cached, [index[i["id"]] for i in items["test"]]),
        train_labels=[i["label"] for i in items["train"]],
        items=items,
        left_out=left_out,
        clinical_dim=len(clin.feature_names(fields)),
    )


def train_loader(data: Dataset, labels: list[int], settings: dict, seed: int) -> DataLoader:
    """Loader of one training epoch, seeded so that the epoch can be replayed after a restart."""
    seed_everything(seed)
    generator = torch.Generator().manual_seed(seed)
    sampler = pdata.weighted_sampler(labels, generator) if settings["weighted_sampler"] else None
    return DataLoader(
        data,
        batch_size=settings["batch_size"],
        sampler=sampler,
        shuffle=sampler is None,
        generator=generator,
        num_workers=settings["num_workers"],
        drop_last=len(labels) > settings["batch_size"],  # BatchNorm needs >1 sample in the 1x1x1 feature maps
    )


def eval_loader(data: Dataset, settings: dict) -> DataLoader:
    return DataLoader(data, batch_size=settings["batch_size"], shuffle=False, num_workers=settings["num_workers"])


# ------------------------------------------------------------------------------------------ loop
@dataclass
class StepTimer:
    """Time spent waiting for batches versus computing them."""

    data: float = 0.0
    compute: float = 0.0
    steps: int = 0

    def iterate(self, loader: DataLoader) -> Iterator[dict]:
        it = iter(loader)
        while True:
            t0 = time.perf_counter()
            try:
                batch = next(it)
            except StopIteration:
                return
            t1 = time.perf_counter()
            self.data += t1 - t0
            yield batch
            self.compute += time.perf_counter() - t1
            self.steps += 1

    @property
    def data_share(self) -> float:
        total = self.data + self.compute
        return self.data / total if total else 0.0


def _inputs(batch: dict, device: torch.device, use_clinical: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    image = batch["image"].to(device, non_blocking=True)
    clinical = batch["clinical"].to(device, non_blocking=True) if use_clinical else None
    return image, clinical


def train_epoch(
    model: nn.Module,
    loader: DataLoader,
    loss_fn: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    device: torch.device,
    amp: bool,
    augment: pdata.BatchAugment | None = None,
    targets: Callable[[dict], tuple[dict, torch.Tensor]] | None = None,
) -> tuple[float, StepTimer]:
    """One pass over the loader, augmenting each batch on the device; `targets` may rewrite a batch
    (pretext tasks)."""
    model.train()
    timer, total, count = StepTimer(), 0.0, 0
    use_clinical = getattr(model, "clinical", None) is not None
    for batch in timer.iterate(loader):
        if targets is not None:
            batch, y = targets(batch)
        else:
            y = batch["label"]
        image, clinical = _inputs(batch, device, use_clinical)
        if augment is not None:
            image = augment(image)
        y = y.to(device)
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=amp):
            loss = loss_fn(model(image, clinical), y)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        total += float(loss.detach()) * len(y)
        count += len(y)
    return total / max(count, 1), timer


@torch.no_grad()
def predict(
    model: nn.Module, loader: DataLoader, device: torch.device, amp: bool
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Class probabilities, true labels and pair ids of every item of the loader."""
    model.eval()
    use_clinical = getattr(model, "clinical", None) is not None
    probs, labels, ids = [], [], []
    for batch in loader:
        image, clinical = _inputs(batch, device, use_clinical)
        with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=amp):
            logits = model(image, clinical)
        probs.append(torch.softmax(logits.float(), dim=1).cpu().numpy())
        labels.append(batch["label"].numpy())
        ids += list(batch["id"])
    if not probs:
        return np.zeros((0, len(pdata.CLASSES))), np.zeros(0, dtype=int), []
    return np.concatenate(probs), np.concatenate(labels).astype(int), ids


def weighted_nll(probs: np.ndarray, labels: np.ndarray, weights: torch.Tensor) -> float:
    """The training loss (class-weighted cross-entropy) from predicted probabilities."""
    if len(labels) == 0:
        return float("nan")
    w = weights.numpy()[labels]
    nll = -np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, None))
    return float((w * nll).sum() / max(w.sum(), 1e-12))


# ------------------------------------------------------------------------------------ checkpoint
def save_checkpoint(path: Path, state: dict) -> None:
    """Atomic write: a job killed while saving keeps the previous checkpoint."""
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path, expected_fingerprint: str) -> dict | None:
    """The checkpoint of an interrupted run of the same job, None when absent or from other settings."""
    if not path.is_file():
        return None
    state = torch.load(path, map_location="cpu", weights_only=False)
    if state.get("fingerprint") != expected_fingerprint:
        log.warning("ignoring %s: written with other settings or data", path)
        return None
    return state


@dataclass
class Selection:
    """Best epoch so far by validation balanced accuracy (ties: lower validation loss) and early stopping."""

    min_delta: float
    score: float = -1.0
    loss: float = float("inf")
    epoch: int = -1
    state: dict = field(default_factory=dict)
    bad_epochs: int = 0

    def update(self, epoch: int, score: float, loss: float, model: nn.Module) -> bool:
        improved = score > self.score + self.min_delta or (score >= self.score and loss < self.loss)
        if improved:
            self.score, self.loss, self.epoch = score, loss, epoch
            self.state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            self.bad_epochs = 0
        else:
            self.bad_epochs += 1
        return improved


# ------------------------------------------------------------------------------------------- fold
def train_fold(
    experiment: dict,
    pairs: pd.DataFrame,
    folds: dict,
    manifest: pd.DataFrame,
    fold: int,
    out_dir: str | Path,
    pretrained: str | Path | None = None,
    threads: int = 1,
    device: str | None = None,
) -> dict:
    """Train one experiment on one fold and write model.pt, predictions.tsv, metrics.json,
    history.tsv and metadata.json to out_dir. Resumes from out_dir/checkpoint.pt when present."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    settings = experiment["training"]
    torch.set_num_threads(max(threads, 1))
    dev = select_device(device)
    amp = bool(settings["amp"]) and dev.type == "cuda"
    seed_everything(settings["seed"])
    splits = fold_splits(folds, fold)
    log.info(
        "experiment %s fold %d on %s (amp %s): %s", experiment["name"], fold, dev, amp,
        {k: len(v) for k, v in splits.items()},
    )
    data = prepare_data(experiment, pairs, manifest, splits, threads)

    model = build_model(
        experiment["architecture"], experiment["in_channels"], len(pdata.CLASSES), settings["image_size"],
        data.clinical_dim, settings["clinical_hidden"], settings["model_kwargs"],
    )
    if pretrained:
        load_backbone_weights(model.backbone, pretrained)
    model.to(dev)
    weights = (
        pdata.class_weights(data.train_labels) if settings["class_weighted_loss"] else torch.ones(len(pdata.CLASSES))
    )
    loss_fn = nn.CrossEntropyLoss(weight=weights.to(dev))
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings["lr"], weight_decay=settings["weight_decay"])
    plateau = settings["plateau"]
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=plateau["factor"], patience=plateau["patience"], min_lr=plateau["min_lr"]
    )
    scaler = torch.amp.GradScaler(dev.type, enabled=amp)
    selection = Selection(settings["early_stopping"]["min_delta"])
    history: list[dict] = []
    start_epoch = 0

    key = fingerprint(experiment, fold, splits, str(pretrained or ""))
    checkpoint_path = out / CHECKPOINT
    state = load_checkpoint(checkpoint_path, key)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        selection = state["selection"]
        history = state["history"]
        start_epoch = state["epoch"] + 1
        log.info("resumed from %s after epoch %d", checkpoint_path, state["epoch"])

    val_loader = eval_loader(data.val, settings)
    augment = pdata.BatchAugment(settings["augment"], gamma=experiment["input"] == "stack")
    patience = settings["early_stopping"]["patience"]
    stopped_early = False
    for epoch in range(start_epoch, settings["max_epochs"]):
        if patience and selection.bad_epochs >= patience:
            stopped_early = True
            break
        t0 = time.perf_counter()
        seed = epoch_seed(settings["seed"], epoch)
        loader = train_loader(data.train, data.train_labels, settings, seed)
        augment.reseed(seed)
        train_loss, timer = train_epoch(model, loader, loss_fn, optimizer, scaler, dev, amp, augment)
        probs, labels, _ = predict(model, val_loader, dev, amp)
        val_loss = weighted_nll(probs, labels, weights)
        val_ba = met.balanced_accuracy(labels, probs.argmax(1)) if len(labels) else 0.0
        scheduler.step(val_loss if np.isfinite(val_loss) else train_loss)
        improved = selection.update(epoch, val_ba, val_loss if np.isfinite(val_loss) else train_loss, model)
        history.append(
            {
                "epoch": epoch,
                "train_loss": train_loss,
                "val_loss": val_loss,
                "val_balanced_accuracy": val_ba,
                "lr": optimizer.param_groups[0]["lr"],
                "seconds": time.perf_counter() - t0,
                "steps": timer.steps,
                "data_wait_share": timer.data_share,
                "best": improved,
            }
        )
        log.info(
            "epoch %d/%d train loss %.4f val loss %.4f val BA %.3f lr %.1e %.1fs (data wait %.0f%%)%s",
            epoch + 1, settings["max_epochs"], train_loss, val_loss, val_ba, history[-1]["lr"],
            history[-1]["seconds"], 100 * timer.data_share, " *" if improved else "",
        )
        save_checkpoint(
            checkpoint_path,
            {
                "fingerprint": key,
                "epoch": epoch,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "selection": selection,
                "history": history,
            },
        )

    model.load_state_dict(selection.state)
    result = _write_fold_outputs(out, experiment, folds, fold, model, data, dev, amp, selection, history, stopped_early)
    metadata = run_metadata(
        {
            "experiment": experiment,
            "fold": fold,
            "seed": settings["seed"],
            "pretrained": str(pretrained) if pretrained else None,
            "resumed": start_epoch > 0,
        },
        dev,
        threads,
    )
    (out / "metadata.json").write_text(json.dumps(metadata, indent=2))
    checkpoint_path.unlink(missing_ok=True)
    return result


def _write_fold_outputs(
    out: Path,
    experiment: dict,
    folds: dict,
    fold: int,
    model: nn.Module,
    data: FoldData,
    dev: torch.device,
    amp: bool,
    selection: Selection,
    history: list[dict],
    stopped_early: bool,
) -> dict:
    settings = experiment["training"]
    probs, labels, ids = predict(model, eval_loader(data.test, settings), dev, amp)
    patients = {i["id"]: i["patient"] for i in data.items["test"]}
    predictions = pd.DataFrame(
        {
            "id": ids,
            "patient": [patients[i] for i in ids],
            "label": [pdata.CLASSES[y] for y in labels],
            "predicted": [pdata.CLASSES[p] for p in probs.argmax(1)] if len(ids) else [],
            **{f"prob_{c}": probs[:, k] if len(ids) else [] for k, c in enumerate(pdata.CLASSES)},
        }
    )
    predictions.to_csv(out / "predictions.tsv", sep="\t", index=False, float_format="%.6f")
    pd.DataFrame(history).to_csv(out / "history.tsv", sep="\t", index=False, float_format="%.6g")
    torch.save(model.state_dict(), out / "model.pt")
    result = {
        "experiment": experiment["name"],
        "fold": fold,
        "protocol": folds.get("protocol"),
        "leaky": bool(folds.get("leaky", False)),
        "best_epoch": selection.epoch,
        "best_val_balanced_accuracy": selection.score,
        "epochs_run": len(history),
        "stopped_early": stopped_early,
        "n_train": len(data.items["train"]),
        "n_val": len(data.items["val"]),
        "left_out": data.left_out.to_dict("records"),
        "test": met.classification_metrics(labels, probs.argmax(1), probs) if len(ids) else {"n": 0},
    }
    (out / "metrics.json").write_text(json.dumps(result, indent=2))
    log.info(
        "fold %d test balanced accuracy %.3f (n=%d, best epoch %d)",
        fold, result["test"].get("balanced_accuracy", float("nan")), len(ids), selection.epoch + 1,
    )
    return result
