import sys; sys.path.insert(0, str(__import__("pathlib").Path(snakemake.scriptdir).parent))  # noqa: E702

import json
from pathlib import Path

from ranoflow.evaluate.experiment_metrics import aggregate_experiment
from ranoflow.script_log import start_log

log = start_log(snakemake)
experiment = snakemake.params.settings["experiment"]
doc = aggregate_experiment(
    experiment,
    [Path(p).parent for p in snakemake.input.metrics],
    bootstrap=experiment["training"]["bootstrap"],
    seed=experiment["training"]["seed"],
)
Path(snakemake.output[0]).write_text(json.dumps(doc, indent=2))
log.info("%s: median balanced accuracy %.3f", experiment["name"], doc["median_balanced_accuracy"])
