"""The training loop shared by every network of the workflow: device and seeds, loaders, one epoch, prediction,
checkpoints, model selection, and `fit`, the epoch loop that resumes from its checkpoint."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.data import DataLoader, Dataset, list_data_collate
from torch import nn

from ranoflow.train.augment import BatchAugment
from ranoflow.train.datasets import weighted_sampler
from ranoflow.vocabulary import CLASSES

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"


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


def uses_sampler(settings: Mapping[str, Any]) -> bool:
    """Whether `training.balance` draws classes equally likely."""
    return settings["balance"] in ("sampler", "both")


def uses_weighted_loss(settings: Mapping[str, Any]) -> bool:
    """Whether `training.balance` weights the cross-entropy by inverse class frequency."""
    return settings["balance"] in ("loss", "both")


def train_loader(data: Dataset, labels: list[int], settings: dict, seed: int) -> DataLoader:
    """Loader of one training epoch, seeded so that the epoch can be replayed after a restart."""
    seed_everything(seed)
    generator = torch.Generator().manual_seed(seed)
    sampler = weighted_sampler(labels, generator) if uses_sampler(settings) else None
    return DataLoader(
        data,
        batch_size=settings["batch_size"],
        sampler=sampler,
        shuffle=sampler is None,
        generator=generator,
        num_workers=loader_workers(data, settings),
        collate_fn=collated,
        drop_last=len(labels) > settings["batch_size"],  # BatchNorm needs >1 sample in the 1x1x1 feature maps
    )


def eval_loader(data: Dataset, settings: dict) -> DataLoader:
    return DataLoader(data, batch_size=settings["batch_size"], shuffle=False, num_workers=loader_workers(data, settings),
                      collate_fn=collated)


def collated(batch: dict | list) -> dict:
    """A batch as a dict of tensors: StoreDataset collates its batches itself (__getitems__), other datasets'
    samples are collated by MONAI."""
    return batch if isinstance(batch, dict) else list_data_collate(batch)


def loader_workers(data: Dataset, settings: dict) -> int:
    """Worker processes of a loader: none for a store read into memory (the prefetch thread copies its studies
    straight into the batch; workers would copy every batch once more between processes), else
    `training.num_workers` for memory-mapped reads."""
    return 0 if getattr(data, "in_memory", False) else settings["num_workers"]


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


def batch_inputs(batch: dict, device: torch.device, use_clinical: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
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
    augment: BatchAugment | None = None,
    targets: Callable[[dict], tuple[dict, torch.Tensor]] | None = None,
    auxiliary: Callable[[nn.Module, dict], torch.Tensor] | None = None,
) -> tuple[float, StepTimer]:
    """One pass over the loader, augmenting each batch on the device; `targets` may rewrite a batch
    (pretext tasks), `auxiliary(model, batch)` adds a loss term after the forward pass (training.volume_loss)."""
    model.train()
    timer, total, count = StepTimer(), 0.0, 0
    use_clinical = getattr(model, "clinical", None) is not None
    for batch in timer.iterate(loader):
        if targets is not None:
            batch, y = targets(batch)
        else:
            y = batch["label"]
        image, clinical = batch_inputs(batch, device, use_clinical)
        if augment is not None:
            image = augment(image)
        y = y.to(device)
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=amp):
            loss = loss_fn(model(image, clinical), y)
            if auxiliary is not None:
                loss = loss + auxiliary(model, batch)
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
        image, clinical = batch_inputs(batch, device, use_clinical)
        with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=amp):
            logits = model(image, clinical)
        probs.append(torch.softmax(logits.float(), dim=1).cpu().numpy())
        labels.append(batch["label"].numpy())
        ids += list(batch["id"])
    if not probs:
        return np.zeros((0, len(CLASSES))), np.zeros(0, dtype=int), []
    return np.concatenate(probs), np.concatenate(labels).astype(int), ids


def weighted_nll(probs: np.ndarray, labels: np.ndarray, weights: torch.Tensor) -> float:
    """Class-weighted cross-entropy from predicted probabilities."""
    if len(labels) == 0:
        return float("nan")
    w = weights.numpy()[labels]
    nll = -np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, None))
    return float((w * nll).sum() / max(w.sum(), 1e-12))


def save_checkpoint(path: Path, state: dict) -> None:
    """Atomic write: a job killed while saving keeps the previous checkpoint."""
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path, expected_fingerprint: Mapping[str, str]) -> dict | None:
    """The checkpoint of an interrupted run of the same job; None when absent, unreadable or from other
    settings or data (the job then starts from epoch 1, saying which of them differ)."""
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - a truncated or foreign file only costs the resume
        log.warning("ignoring %s: cannot be read (%s: %s)", path, type(error).__name__, error)
        return None
    written = state.get("fingerprint")
    written = written if isinstance(written, dict) else {}
    changed = [name for name, value in expected_fingerprint.items() if written.get(name) != value]
    if changed:
        log.warning("starting fresh, not resuming from %s: it was trained with other %s", path, " and ".join(changed))
        return None
    return state


@dataclass
class Selection:
    """Best epoch so far and early stopping, by `criterion` (`training.selection`):

    - `val_loss`: the lowest class-balanced validation loss (ties: the higher balanced accuracy);
    - `balanced_accuracy`: the highest validation balanced accuracy (ties: the lower loss);
    - `smoothed_balanced_accuracy`: the highest mean balanced accuracy of the last `window` epochs (ties:
      the lower loss), so one lucky epoch on a dozen validation pairs does not pick the model.
    """

    min_delta: float
    criterion: str = "balanced_accuracy"
    window: int = 3
    score: float = -float("inf")
    loss: float = float("inf")
    balanced_accuracy: float = -1.0
    epoch: int = -1
    state: dict = field(default_factory=dict)
    bad_epochs: int = 0
    recent: list = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.criterion not in ("val_loss", "balanced_accuracy", "smoothed_balanced_accuracy"):
            raise ValueError(f"unknown training.selection {self.criterion!r}")

    def _score(self, balanced_accuracy: float, loss: float) -> float:
        """Higher is better."""
        if self.criterion == "val_loss":
            return -loss
        if self.criterion == "smoothed_balanced_accuracy":
            self.recent = [*self.recent, balanced_accuracy][-self.window :]
            return float(np.mean(self.recent))
        return balanced_accuracy

    def update(self, epoch: int, balanced_accuracy: float, loss: float, model: nn.Module) -> bool:
        score = self._score(balanced_accuracy, loss)
        tie_break = loss < self.loss if self.criterion != "val_loss" else balanced_accuracy > self.balanced_accuracy
        improved = score > self.score + self.min_delta or (score >= self.score and tie_break)
        if improved:
            self.score, self.loss, self.epoch = score, loss, epoch
            self.balanced_accuracy = balanced_accuracy
            self.state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            self.bad_epochs = 0
        else:
            self.bad_epochs += 1
        return improved


    def state_dict(self) -> dict:
        return dict(vars(self))

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        vars(self).update(state)


@dataclass
class FitResult:
    """What `fit` did: one history row per epoch run (resumed ones included)."""

    history: list[dict]
    resumed_after: int | None  # last epoch of the checkpoint it resumed from, None for a fresh start
    stopped_early: bool


def fit(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    run_epoch: Callable[[int], dict],
    max_epochs: int,
    checkpoint: Path,
    key: Mapping[str, str],
    stateful: Mapping[str, Any] | None = None,
    stop: Callable[[], bool] = lambda: False,
) -> FitResult:
    """Run epochs until `max_epochs` or `stop()`, with a checkpoint after every epoch.

    `run_epoch(epoch)` trains (and validates) one epoch and returns its history row. The checkpoint holds
    the model, optimizer, scaler, every `stateful` object (anything with state_dict/load_state_dict, e.g.
    a scheduler or a Selection) and the history; when `checkpoint` holds a run with the same `key` (named
    fingerprints, e.g. of the settings and of the data), the loop resumes after its last epoch. Each epoch draws from its own seed, so a resumed run ends where an
    uninterrupted one would.
    """
    stateful = dict(stateful or {})
    history: list[dict] = []
    resumed_after = None
    state = load_checkpoint(checkpoint, key)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        for name, target in stateful.items():
            target.load_state_dict(state[name])
        history, resumed_after = state["history"], state["epoch"]
        log.info("resumed from %s after epoch %d", checkpoint, resumed_after + 1)
    start = 0 if resumed_after is None else resumed_after + 1
    stopped_early = False
    for epoch in range(start, max_epochs):
        if stop():
            stopped_early = True
            break
        t0 = time.perf_counter()
        row = {"epoch": epoch, **run_epoch(epoch), "seconds": time.perf_counter() - t0}
        history.append(row)
        log.info("epoch %d/%d %s", epoch + 1, max_epochs, _describe(row))
        save_checkpoint(
            checkpoint,
            {
                "fingerprint": key,
                "epoch": epoch,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scaler": scaler.state_dict(),
                **{name: target.state_dict() for name, target in stateful.items()},
                "history": history,
            },
        )
    return FitResult(history=history, resumed_after=resumed_after, stopped_early=stopped_early)


def _describe(row: dict) -> str:
    """An epoch's history row as one log line: `train_loss 0.8123, val_loss 0.9, ..., 12.3 s`."""
    shown = [
        f"{name} {value:.4g}" if isinstance(value, float) else f"{name} {value}"
        for name, value in row.items()
        if name not in ("epoch", "seconds")
    ]
    return ", ".join(shown) + f" ({row['seconds']:.1f} s)"
