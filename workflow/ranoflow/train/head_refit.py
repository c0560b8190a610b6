"""`training.refit_head_steps`: after training, the rating head is fitted again on the frozen network's
representation of the training pairs (for the volume head, its volume estimates: a sequentially trained
concept bottleneck).

Why: trained jointly, the head sees each pair only about max_epochs times while the estimates beneath it
still move; on the demo it ended with a third of its own training PD pairs rated SD although their volume
estimates were right. Fitted on fixed inputs until it converges, it places its thresholds where the estimates
put the classes. Only the head (and the clinical MLP feeding it) changes; the backbone and the volume
regression stay as the selected epoch left them.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from ranoflow.evaluate import metrics
from ranoflow.train.datasets import FoldData, class_weights
from ranoflow.train.loop import batch_inputs, eval_loader

log = logging.getLogger(__name__)

REFIT_LR = 1e-2  # Adam on a head of a few hundred weights over a fixed full batch


@torch.no_grad()
def frozen_inputs(
    model: nn.Module, data: FoldData, split: str, settings: dict, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """(representation, clinical, labels) of every pair of a split, the network in eval mode, no augmentation."""
    model.eval()
    use_clinical = getattr(model, "clinical", None) is not None
    feats, clinical, labels = [], [], []
    for batch in data.on_device(eval_loader(getattr(data, split), settings), device):
        image, extra = batch_inputs(batch, device, use_clinical)
        feats.append(model.features(image).float())
        clinical.append(extra.float() if extra is not None else None)
        labels.append(batch["label"].to(device))
    if not feats:
        return torch.zeros(0), None, torch.zeros(0, dtype=torch.long)
    return torch.cat(feats), (torch.cat(clinical) if use_clinical else None), torch.cat(labels).long()


def _balanced_accuracy(model: nn.Module, inputs: tuple) -> float | None:
    feats, clinical, labels = inputs
    if not len(labels):
        return None
    with torch.no_grad():
        predicted = model.rate(feats, clinical).argmax(1)
    return round(metrics.balanced_accuracy(labels.cpu().numpy(), predicted.cpu().numpy()), 4)


def refit_head(model: nn.Module, data: FoldData, settings: dict, device: torch.device) -> dict:
    """Fit model.head (and model.clinical) for training.refit_head_steps full-batch Adam steps on the training
    pairs' frozen representation, classes weighted to equal shares; returns the training and validation
    balanced accuracy before and after (the record metrics.json keeps)."""
    steps = settings["refit_head_steps"]
    train = frozen_inputs(model, data, "train", settings, device)
    val = frozen_inputs(model, data, "val", settings, device)
    record = {"steps": steps, "before": {"train": _balanced_accuracy(model, train), "val": _balanced_accuracy(model, val)}}
    params = [p for module in (model.head, model.clinical) if module is not None for p in module.parameters()]
    torch.manual_seed(settings["seed"])
    optimizer = torch.optim.Adam(params, lr=REFIT_LR, weight_decay=settings["weight_decay"])
    loss_fn = nn.CrossEntropyLoss(weight=class_weights(data.train_labels).to(device))
    feats, clinical, labels = train
    model.eval()  # no dropout or batch-norm updates in the frozen part; the head has neither
    with torch.enable_grad():
        for _ in range(steps):
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model.rate(feats, clinical), labels)
            loss.backward()
            optimizer.step()
    record["after"] = {"train": _balanced_accuracy(model, train), "val": _balanced_accuracy(model, val)}
    record["final_loss"] = round(float(loss.detach()), 4)
    log.info("head refit on %d training pairs (%d steps): balanced accuracy train %s -> %s, val %s -> %s",
             len(labels), steps, record["before"]["train"], record["after"]["train"],
             record["before"]["val"], record["after"]["val"])
    return record
