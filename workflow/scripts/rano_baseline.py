import sys; sys.path.insert(0, str(__import__("pathlib").Path(snakemake.scriptdir).parent))  # noqa: E702

import json

import pandas as pd

from ranoflow.baseline.criteria import RuleSettings
from ranoflow.baseline.scoring import RULES, fold_of_pairs, predict_pairs, score, scored_predictions
from ranoflow.script_log import start_log
from ranoflow.tables import read_tsv

log = start_log(snakemake)
section = snakemake.params.settings["baseline"]
settings = RuleSettings.from_config(section)
if section["volumes"] == "measured" and settings.source == "hdglio":
    raise ValueError("baseline.volumes: measured reads DeepBraTumIA's measured_volumes_in_mm3.json; HD-GLIO-AUTO has none")
pairs = read_tsv(snakemake.input.pairs)
studies = read_tsv(snakemake.input.studies)
volumes = read_tsv(snakemake.input.volumes)
with open(snakemake.input.folds) as handle:
    folds = json.load(handle)

outputs = {
    "rano_rules": (snakemake.output.predictions, snakemake.output.metrics),
    "rano_rules_previous": (snakemake.output.predictions_previous, snakemake.output.metrics_previous),
}
missing_tables = []
for experiment, reference in RULES.items():
    assessed, missing = predict_pairs(pairs, studies, settings, volumes, reference)
    predictions = scored_predictions(pairs, assessed, folds, section["missing_prediction"])
    metrics = score(
        predictions, folds, settings, section["missing_prediction"], snakemake.params.settings["bootstrap"], experiment
    )
    predictions_path, metrics_path = outputs[experiment]
    predictions.to_csv(predictions_path, sep="\t", index=False)
    with open(metrics_path, "w") as handle:
        json.dump(metrics, handle, indent=2)
    log.info("%s: median balanced accuracy over %d folds: %s", experiment, len(metrics["folds"]),
             metrics["median_balanced_accuracy"])
    missing_tables.append(missing.assign(rule=experiment))

missing = pd.concat(missing_tables, ignore_index=True)
missing["fold"] = missing["id"].map(fold_of_pairs(folds)).astype("Int64")
missing.to_csv(snakemake.output.missing, sep="\t", index=False)
