import sys; sys.path.insert(0, str(__import__("pathlib").Path(snakemake.scriptdir).parent))  # noqa: E702

import json
from pathlib import Path

import pandas as pd
import torch

from ranoflow.explain.attribution import ExplainSettings, resolve_layer
from ranoflow.explain.pair_maps import Study, explain_pair, pair_input
from ranoflow.train.models import load_trained_model
from ranoflow.explain.selection import select_pairs
from ranoflow.explain.summary import SCORES_FILE, SCORE_COLUMNS
from ranoflow.script_log import start_log
from ranoflow.tables import read_tsv
from ranoflow.train.pair_items import pair_items, sides

log = start_log(snakemake)
settings = ExplainSettings.from_config(snakemake.params.settings)
experiment, fold = snakemake.wildcards.experiment, int(snakemake.wildcards.fold)
out = Path(snakemake.output[0])
out.mkdir(parents=True, exist_ok=True)
torch.set_num_threads(max(int(snakemake.threads), 1))
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

resolved = json.loads(Path(snakemake.input.metadata).read_text())["experiment"]
references = resolved.get("references", ["previous"])  # models trained before `references` read the previous study
model = load_trained_model(resolved, snakemake.input.model, device)
if "gradcam" in settings.methods:
    log.info("Grad-CAM layer: %s", resolve_layer(model, settings.layer)[0])

predictions = pd.read_csv(snakemake.input.predictions, sep="\t", dtype={"id": str, "label": str, "predicted": str})
chosen = select_pairs(predictions, settings.n_per_class)
log.info(
    "%s fold %d: explaining %d of %d test pairs\n%s",
    experiment,
    fold,
    len(chosen),
    len(predictions),
    chosen[["id", "label", "predicted", "selection"]].to_string(index=False),
)

items, left_out = pair_items(
    read_tsv(snakemake.input.pairs),
    read_tsv(snakemake.input.manifest),
    list(chosen["id"]),
    resolved["modalities"],
    resolved["clinical"],
    resolved["training"]["use_flagged"],
    references,
)
for row in left_out.itertuples():
    log.warning("cannot explain %s: %s", row.id, row.reason)
items_by_id = {item["id"]: item for item in items}
store_dir = Path(snakemake.input.grid).parent
geometry = json.loads(Path(snakemake.input.grid).read_text())

rows = []
for selected in chosen.to_dict("records"):
    item = items_by_id.get(selected["id"])
    if item is None:
        continue
    pair = {**{side: item[f"{side}_study"] for side in sides(references)}, **selected}
    inputs = pair_input(item, resolved, store_dir, geometry)
    inputs.image = inputs.image.to(device)
    inputs.extra = tuple(e.to(device) for e in inputs.extra)
    studies = {side: Study(Path(item[f"{side}_dir"])) for side in sides(references)}
    for row in explain_pair(model, pair, inputs, studies, settings, out):
        rows.append({"experiment": experiment, "fold": fold, **row})
        log.info(
            "%s %s %s-%s: tumour share %.3f, brain share %.3f, pointing game %s",
            row["pair"],
            row["method"],
            row["target"],
            row["target_class"],
            row["tumour_share"],
            row["brain_share"],
            row["pointing"],
        )

scores = pd.DataFrame(rows)
scores = scores.reindex(columns=SCORE_COLUMNS + [c for c in scores.columns if c not in SCORE_COLUMNS])
scores.to_csv(out / SCORES_FILE, sep="\t", index=False, float_format="%.4f")
