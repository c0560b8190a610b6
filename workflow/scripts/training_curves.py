import sys; sys.path.insert(0, str(__import__("pathlib").Path(snakemake.scriptdir).parent))  # noqa: E702

import json
from pathlib import Path

import pandas as pd

from ranoflow.evaluate.training_curves import plot_training_curves
from ranoflow.script_log import start_log

log = start_log(snakemake)
histories, best_epochs = {}, {}
for history_path, metrics_path in zip(snakemake.input.histories, snakemake.input.metrics, strict=True):
    metrics = json.loads(Path(metrics_path).read_text())
    histories[metrics["fold"]] = pd.read_csv(history_path, sep="\t")
    best_epochs[metrics["fold"]] = metrics["best_epoch"]
plot_training_curves(histories, best_epochs, snakemake.wildcards.experiment, snakemake.output[0],
                     snakemake.params.settings["selection"])
log.info("selected epochs per fold: %s", best_epochs)
