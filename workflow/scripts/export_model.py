import sys; sys.path.insert(0, str(__import__("pathlib").Path(snakemake.scriptdir).parent))  # noqa: E702

import json
from pathlib import Path

from ranoflow.train.models import load_trained_model
from ranoflow.predict.export import export_ensemble, model_card
from ranoflow.script_log import start_log

log = start_log(snakemake)
metadata = [json.loads(Path(path).read_text()) for path in snakemake.input.metadata]
resolved = metadata[0]["experiment"]
models = [load_trained_model(m["experiment"], path) for m, path in zip(metadata, snakemake.input.models)]
card = model_card(
    resolved,
    [m["fold"] for m in metadata],
    snakemake.params.settings["preprocessing"],
    {key: snakemake.input[key] for key in ("brain", "brain_mask")},
    json.loads(Path(snakemake.input.grid).read_text()),
)
path = export_ensemble(models, resolved, card, snakemake.output.model)
log.info("exported %s: %d fold models, input %s", path, len(models), card["input"]["image_shape"])
