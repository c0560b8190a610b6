"""The predict job: each follow-up of a sample sheet rated by an experiment's exported fold ensemble.

The follow-ups' studies were preprocessed by the register job with the training cohort's settings; here
they are put on the training grid the model card records (as the tensor store's study files), joined and
assembled into the network input by the same code as the training pairs (`pair_items`, `pair_input`), then
rated by the mean of the fold models' probabilities.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from ranoflow.explain.attribution import ExplainSettings
from ranoflow.explain.pair_maps import Study, explain_pair, pair_input
from ranoflow.predict.export import load_export
from ranoflow.predict.sheet import clinical_record, follow_ups
from ranoflow.train.pair_items import pair_items, sides
from ranoflow.train.tensor_store import study_files, write_study_store
from ranoflow.vocabulary import CLASSES

log = logging.getLogger(__name__)
NOT_RATED = "not rated"
# the patient of every sheet study in the pair and store tables (the sheet's study keys are unique on their own)
SHEET_PATIENT = "new"


class MeanLogProbability(nn.Module):
    """The ensemble's mean probability as log-probabilities, so that softmax (as attribution applies it)
    gives back the mean probability."""

    def __init__(self, ensemble: nn.Module, clinical_dim: int) -> None:
        super().__init__()
        self.ensemble = ensemble
        self.clinical_dim = clinical_dim

    def train(self, mode: bool = True) -> MeanLogProbability:
        # an exported program is fixed in eval mode and refuses train()/eval(): do not pass it on
        self.training = mode
        return self

    def forward(self, image: torch.Tensor, clinical: torch.Tensor | None = None) -> torch.Tensor:
        if clinical is None:
            clinical = image.new_zeros(image.shape[0], self.clinical_dim)
        return torch.log(self.ensemble(image, clinical).mean(0).clamp_min(1e-12))


def _tables(sheet: pd.DataFrame, study_dirs: dict[str, Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The sheet as pairs.tsv and manifest.tsv would hold it, for `pair_items`."""
    pairs = []
    for follow_up, roles in follow_ups(sheet).items():
        pairs.append({"id": follow_up, "patient": SHEET_PATIENT, "label": "", **roles, **clinical_record(sheet, follow_up)})
    manifest = []
    for key, directory in study_dirs.items():
        status = json.loads((directory / "status.json").read_text())
        manifest.append({"patient": SHEET_PATIENT, "study": key, "status": status["status"],
                         "reason": status.get("reason", ""), "dir": str(directory), "checksum": ""})
    return pd.DataFrame(pairs).fillna(""), pd.DataFrame(manifest)


def rate_follow_ups(sheet: pd.DataFrame, study_dirs: dict[str, Path], export: str | Path, out_dir: str | Path,
                    saliency: bool = True) -> pd.DataFrame:
    """Write rating.tsv (rating, mean probabilities, fold agreement), votes.tsv (each fold model's vote)
    and, with `saliency`, a saliency map and figure per rated follow-up under saliency/; the studies' tensors
    on the training grid go to tensors/; returns the ratings."""
    out = Path(out_dir)
    (out / "saliency").mkdir(parents=True, exist_ok=True)
    ensemble, card = load_export(export)
    resolved = card["experiment_settings"]
    references = resolved.get("references", ["previous"])
    model = MeanLogProbability(ensemble, len(card["input"]["clinical_features"])).eval()
    pairs, manifest = _tables(sheet, study_dirs)
    store = out / "tensors"
    for key, directory in study_dirs.items():
        log.info("%s", write_study_store(directory, card["grid"], *study_files(store, SHEET_PATIENT, key)))
    items, left_out = pair_items(pairs, manifest, list(pairs["id"]), resolved["modalities"], resolved["clinical"],
                                 resolved["training"]["use_flagged"], references)
    reasons = dict(zip(left_out["id"], left_out["reason"]))
    settings = ExplainSettings(methods=("saliency",), targets=("predicted",))
    ratings, votes = [], []
    by_id = {item["id"]: item for item in items}
    for row in pairs.to_dict("records"):
        follow_up = row["id"]
        studies = {side: row.get(side, "") for side in sides(references)}
        item = by_id.get(follow_up)
        if item is None:
            log.warning("%s not rated: %s", follow_up, reasons[follow_up])
            ratings.append({"follow_up": follow_up, **studies, "rating": NOT_RATED, "reason": reasons[follow_up]})
            continue
        inputs = pair_input(item, resolved, store, card["grid"])
        clinical = inputs.extra[0] if inputs.extra else torch.zeros(1, model.clinical_dim)
        with torch.no_grad():
            per_fold = ensemble(inputs.image, clinical)[:, 0].numpy()
        mean = per_fold.mean(0)
        rating = CLASSES[int(np.argmax(mean))]
        fold_votes = [CLASSES[int(np.argmax(p))] for p in per_fold]
        for fold, (vote, probs) in enumerate(zip(fold_votes, per_fold)):
            votes.append({"follow_up": follow_up, "fold": card["folds"][fold], "vote": vote,
                          **{f"prob_{c}": float(p) for c, p in zip(CLASSES, probs)}})
        ratings.append({"follow_up": follow_up, **studies, "rating": rating,
                        **{f"prob_{c}": float(p) for c, p in zip(CLASSES, mean)},
                        "fold_agreement": fold_votes.count(rating) / len(fold_votes), "reason": ""})
        log.info("%s: %s (p %s; fold votes %s)", follow_up, rating, np.round(mean, 3).tolist(), fold_votes)
        if saliency:
            pair = {"id": follow_up, "label": NOT_RATED, "selection": "new follow-up", **studies}
            dirs = {side: Study(Path(item[f"{side}_dir"])) for side in sides(references)}
            explain_pair(model, pair, inputs, dirs, settings, out / "saliency")
    columns = ["follow_up", *sides(references), "rating", *(f"prob_{c}" for c in CLASSES), "fold_agreement", "reason"]
    table = pd.DataFrame(ratings).reindex(columns=columns)
    table.to_csv(out / "rating.tsv", sep="\t", index=False, float_format="%.4f")
    pd.DataFrame(votes, columns=["follow_up", "fold", "vote", *(f"prob_{c}" for c in CLASSES)]).to_csv(
        out / "votes.tsv", sep="\t", index=False, float_format="%.4f")
    return table
