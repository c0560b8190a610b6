"""Training of one experiment on one fold (the `train` job): AdamW, cross-entropy with the class balancing of
`training.balance`, a decaying learning rate (`training.schedule`), model selection and early stopping by
`training.selection`; the best epoch predicts the test pairs."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from ranoflow.evaluate import metrics
from ranoflow.train.augment import BatchAugment
from ranoflow.train.datasets import FoldData, class_weights, fold_splits, prepare_data
from ranoflow.train.head_refit import refit_head
from ranoflow.train.job_guard import hold_lock
from ranoflow.train.loop import (
    CHECKPOINT,
    Selection,
    epoch_seed,
    eval_loader,
    fingerprint,
    fit,
    predict,
    seed_everything,
    select_device,
    train_epoch,
    train_loader,
    uses_weighted_loss,
    weighted_nll,
)
from ranoflow.train.metadata import run_metadata
from ranoflow.train.models import load_backbone_weights, model_for
from ranoflow.train.transforms import uses_gamma
from ranoflow.vocabulary import CLASSES

log = logging.getLogger(__name__)
LOCK = ".train.lock"  # held by the process training a fold's folder


def check_class_weights(fold: int, data: FoldData, refuse: bool = True) -> None:
    """A class of the fold's validation or test pairs with no training pair gets loss weight 0 (a
    validation set of only such pairs scores loss 0 every epoch): raise ValueError naming fold and class
    (with `refuse` False, log a warning)."""
    trained = {CLASSES[label] for label in data.train_labels}
    evaluated = {CLASSES[item["label"]] for split in ("val", "test") for item in data.items[split]}
    missing = [c for c in CLASSES if c in evaluated - trained]
    if not missing:
        return
    message = (
        f"fold {fold}: no {', '.join(missing)} pair in the training split, so its loss weight is 0 though its "
        f"validation/test splits hold such pairs (see the warnings of folds.json: lower folds.k, or set "
        f"training.allow_missing_class)"
    )
    if refuse:
        raise ValueError(message)
    log.warning("%s", message)


def volume_loss(weight: float):
    """The auxiliary loss of `training.volume_loss`: weight x the mean squared error of the shared encoder's
    per-study volume estimates against the studies' enhancing-tumour volumes (log1p of cm^3) where known."""
    if not weight:
        return None

    def loss(model: nn.Module, batch: dict) -> torch.Tensor:
        estimates, known = model.last_volumes, batch["volumes"].to(model.last_volumes.device)
        measured = torch.isfinite(known)
        if not measured.any():
            return estimates.sum() * 0.0
        return weight * nn.functional.mse_loss(estimates[measured].float(), known[measured])

    return loss


def lr_schedule(optimizer: torch.optim.Optimizer, settings: dict) -> torch.optim.lr_scheduler.LRScheduler:
    """The learning-rate schedule of `training.schedule`, stepped once per epoch by `step_schedule`."""
    plateau = settings["plateau"]
    if settings["schedule"] == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=settings["max_epochs"], eta_min=plateau["min_lr"]
        )
    if settings["early_stopping"]["patience"] and plateau["patience"] >= settings["early_stopping"]["patience"]:
        log.warning(
            "training.plateau.patience %d >= early_stopping.patience %d: the learning rate will not decay before "
            "the run stops", plateau["patience"], settings["early_stopping"]["patience"],
        )
    return torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=plateau["factor"], patience=plateau["patience"], min_lr=plateau["min_lr"]
    )


def step_schedule(scheduler: torch.optim.lr_scheduler.LRScheduler, monitored: float) -> None:
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        scheduler.step(monitored)
    else:
        scheduler.step()


def train_fold(
    experiment: dict,
    pairs: pd.DataFrame,
    folds: dict,
    manifest: pd.DataFrame,
    fold: int,
    out_dir: str | Path,
    store_dir: str | Path,
    pretrained: str | Path | None = None,
    threads: int = 1,
    device: str | None = None,
    load: str = "auto",
    memory_mb: int | None = None,
    volumes: pd.DataFrame | None = None,
) -> dict:
    """Train one experiment on one fold (its pairs read from the tensor store in store_dir, in memory or
    memory-mapped as `load` and the job's memory_mb say) and write model.pt, predictions.tsv, metrics.json,
    history.tsv and metadata.json to out_dir. `volumes` (study_volumes.tsv) are the targets of
    training.volume_loss. Resumes from out_dir/checkpoint.pt when present; refuses to
    start while another process trains into out_dir."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lock = hold_lock(out / LOCK)
    settings = experiment["training"]
    torch.set_num_threads(max(threads, 1))
    dev = select_device(device)
    amp = bool(settings["amp"]) and dev.type == "cuda"
    seed_everything(settings["seed"])
    splits = fold_splits(folds, fold)
    log.info(
        "experiment %s fold %d on %s (amp %s): %s",
        experiment["name"],
        fold,
        dev,
        amp,
        {k: len(v) for k, v in splits.items()},
    )
    if settings["volume_loss"] and volumes is None:
        raise ValueError(f"experiment {experiment['name']}: training.volume_loss needs the studies' volumes "
                         "(study_volumes.tsv)")
    data = prepare_data(experiment, pairs, manifest, splits, store_dir, load, memory_mb,
                        volumes if settings["volume_loss"] else None)
    check_class_weights(fold, data, refuse=not settings["allow_missing_class"])

    model = model_for(experiment, data.clinical_dim)
    if pretrained:
        load_backbone_weights(model.backbone, pretrained)
    model.to(dev)
    # validation loss is class-balanced whatever the training balance, as the balanced accuracy it stands for
    balanced = class_weights(data.train_labels)
    loss_fn = nn.CrossEntropyLoss(weight=balanced.to(dev) if uses_weighted_loss(settings) else None)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings["lr"], weight_decay=settings["weight_decay"])
    scheduler = lr_schedule(optimizer, settings)
    scaler = torch.amp.GradScaler(dev.type, enabled=amp)
    selection = Selection(
        settings["early_stopping"]["min_delta"], settings["selection"], settings["selection_window"]
    )
    val_loader = data.on_device(eval_loader(data.val, settings), dev)
    augment = BatchAugment(settings["augment"], gamma=uses_gamma(experiment["input"]))
    auxiliary = volume_loss(settings["volume_loss"])

    def run_epoch(epoch: int) -> dict:
        seed = epoch_seed(settings["seed"], epoch)
        loader = data.on_device(train_loader(data.train, data.train_labels, settings, seed), dev)
        augment.reseed(seed)
        train_loss, timer = train_epoch(model, loader, loss_fn, optimizer, scaler, dev, amp, augment,
                                        auxiliary=auxiliary)
        probs, labels, _ = predict(model, val_loader, dev, amp)
        val_loss = weighted_nll(probs, labels, balanced)
        val_ba = metrics.balanced_accuracy(labels, probs.argmax(1)) if len(labels) else 0.0
        monitored = val_loss if np.isfinite(val_loss) else train_loss
        step_schedule(scheduler, monitored)
        improved = selection.update(epoch, val_ba, monitored, model)
        return {
            "train_loss": train_loss,
            "val_loss": val_loss,
            "val_balanced_accuracy": val_ba,
            "lr": optimizer.param_groups[0]["lr"],
            "steps": timer.steps,
            "data_wait_share": timer.data_share,
            "best": improved,
        }

    patience = settings["early_stopping"]["patience"]
    checkpoint = out / CHECKPOINT
    run = fit(
        model,
        optimizer,
        scaler,
        run_epoch,
        settings["max_epochs"],
        checkpoint,
        key={
            "settings": fingerprint(experiment, fold, splits, str(pretrained or "")),
            "preprocessed images": data.content,
        },
        stateful={"scheduler": scheduler, "selection": selection},
        stop=lambda: bool(patience) and selection.bad_epochs >= patience,
    )

    model.load_state_dict(selection.state)
    refit = refit_head(model, data, settings, dev) if settings["refit_head_steps"] else None
    result = _write_fold_outputs(
        out, experiment, folds, fold, model, data, dev, amp, selection, run.history, run.stopped_early, refit
    )
    metadata = run_metadata(
        {
            "experiment": experiment,
            "fold": fold,
            "seed": settings["seed"],
            "pretrained": str(pretrained) if pretrained else None,
            "resumed": run.resumed_after is not None,
        },
        dev,
        threads,
    )
    (out / "metadata.json").write_text(json.dumps(metadata, indent=2))
    checkpoint.unlink(missing_ok=True)
    lock.close()
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
    refit: dict | None = None,
) -> dict:
    settings = experiment["training"]
    probs, labels, ids = predict(model, data.on_device(eval_loader(data.test, settings), dev), dev, amp)
    patients = {i["id"]: i["patient"] for i in data.items["test"]}
    predictions = pd.DataFrame(
        {
            "id": ids,
            "patient": [patients[i] for i in ids],
            "label": [CLASSES[y] for y in labels],
            "predicted": [CLASSES[p] for p in probs.argmax(1)] if len(ids) else [],
            **{f"prob_{c}": probs[:, k] if len(ids) else [] for k, c in enumerate(CLASSES)},
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
        "head_refit": refit,
        "n_train": len(data.items["train"]),
        "n_val": len(data.items["val"]),
        "left_out": data.left_out.to_dict("records"),
        "test": metrics.classification_metrics(labels, probs.argmax(1), probs) if len(ids) else {"n": 0},
    }
    (out / "metrics.json").write_text(json.dumps(result, indent=2))
    log.info(
        "fold %d test balanced accuracy %.3f (n=%d, best epoch %d)",
        fold, result["test"].get("balanced_accuracy", float("nan")), len(ids), selection.epoch + 1,
    )
    return result
