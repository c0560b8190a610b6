import sys; sys.path.insert(0, str(__import__("pathlib").Path(snakemake.scriptdir).parent))  # noqa: E702

import json
from pathlib import Path

from ranoflow.evaluate.experiment_metrics import aggregate_experiment, fold_predictions
from ranoflow.script_log import start_log

log = start_log(snakemake)
experiment = snakemake.params.settings["experiment"]
fold_dirs = [Path(p).parent for p in snakemake.input.metrics]
doc = aggregate_experiment(
    experiment,
    fold_dirs,
    bootstrap=experiment["training"]["bootstrap"],
    seed=experiment["training"]["seed"],
)
Path(snakemake.output.metrics).write_text(json.dumps(doc, indent=2))
fold_predictions(fold_dirs).to_csv(snakemake.output.predictions, sep="\t", index=False, float_format="%.6f")
log.info("%s: median balanced accuracy %.3f", experiment["name"], doc["median_balanced_accuracy"])
