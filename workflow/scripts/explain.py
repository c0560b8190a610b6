import sys; sys.path.insert(0, str(__import__("pathlib").Path(snakemake.scriptdir).parent))  # noqa: E702

import json
import logging
from pathlib import Path

import pandas as pd
import torch

from ranoflow.explain import ExplainSettings, resolve_layer, select_pairs
from ranoflow.explain_run import Study, explain_pair, load_trained_model, pair_input
from ranoflow.explain_summary import SCORES_FILE
from ranoflow.pair_dataset import pair_items
from ranoflow.tables import read_tsv

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # tracebacks and warnings into the log too
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
logging.captureWarnings(True)
log = logging.getLogger("explain")

settings = ExplainSettings.from_config(snakemake.params.settings)
experiment, fold = snakemake.wildcards.experiment, int(snakemake.wildcards.fold)
out = Path(snakemake.output[0])
out.mkdir(parents=True, exist_ok=True)
torch.set_num_threads(max(int(snakemake.threads), 1))
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

resolved = json.loads(Path(snakemake.input.metadata).read_text())["experiment"]
model = load_trained_model(resolved, snakemake.input.model, device)
if "gradcam" in settings.methods:
    log.info("Grad-CAM layer: %s", resolve_layer(model, settings.layer)[0])

predictions = pd.read_csv(snakemake.input.predictions, sep="\t", dtype={"id": str, "label": str, "predicted": str})
chosen = select_pairs(predictions, settings.n_per_class)
log.info("%s fold %d: explaining %d of %d test pairs\n%s", experiment, fold, len(chosen), len(predictions),
         chosen[["id", "label", "predicted", "selection"]].to_string(index=False))

pairs = read_tsv(snakemake.input.pairs)
manifest = read_tsv(snakemake.input.manifest)
items, left_out = pair_items(
    pairs, manifest, list(chosen["id"]), resolved["modalities"], resolved["clinical"],
    resolved["training"]["use_flagged"],
)
for row in left_out.itertuples():
    log.warning("cannot explain %s: %s", row.id, row.reason)
items_by_id = {item["id"]: item for item in items}
studies = {(r["patient"], r["study"]): Study(Path(r["dir"])) for r in manifest.to_dict("records")}
by_id = pairs.set_index("id")

rows = []
for selected in chosen.to_dict("records"):
    if selected["id"] not in items_by_id:
        continue
    pair = {**by_id.loc[selected["id"]].to_dict(), **selected}
    inputs = pair_input(items_by_id[selected["id"]], resolved)
    inputs.image = inputs.image.to(device)
    inputs.extra = tuple(e.to(device) for e in inputs.extra)
    current, previous = studies[(pair["patient"], pair["current"])], studies[(pair["patient"], pair["previous"])]
    for row in explain_pair(model, pair, inputs, current, previous, settings, out):
        rows.append({"experiment": experiment, "fold": fold, **row})
        log.info("%s %s %s-%s: tumour share %.3f, brain share %.3f, pointing hit %s", row["pair"], row["method"],
                 row["target"], row["target_class"], row["tumour_share"], row["brain_share"], row["pointing_hit"])

columns = ["experiment", "fold", "pair", "patient", "label", "predicted", "correct", "selection", "method", "target",
           "target_class", "tumour_share", "brain_share", "pointing_hit", "tumour_volume_share", "current_share",
           "previous_share", "peak_voxel", "frames", "map", "figure"]
scores = pd.DataFrame(rows)
scores = scores.reindex(columns=columns + [c for c in scores.columns if c not in columns])
scores.to_csv(out / SCORES_FILE, sep="\t", index=False, float_format="%.4f")
