import sys; sys.path.insert(0, str(__import__("pathlib").Path(snakemake.scriptdir).parent))  # noqa: E702

import json

import numpy as np
import pandas as pd

from ranoflow.baseline.criteria import RuleSettings
from ranoflow.baseline.expert_rule import ExpertSettings
from ranoflow.baseline.scoring import (
    RULES,
    fold_of_pairs,
    predict_expert,
    predict_pairs,
    read_inputs,
    score,
    scored_predictions,
)
from ranoflow.baseline.study_measures import LesionPoints
from ranoflow.script_log import start_log

log = start_log(snakemake)
section = snakemake.params.settings["baseline"]
bootstrap = snakemake.params.settings["bootstrap"]
settings = RuleSettings.from_config(section)
expert = ExpertSettings.from_config(section["expert"])
pairs, studies, measures, folds = read_inputs(
    snakemake.input.pairs, snakemake.input.studies, snakemake.input.measures, snakemake.input.folds
)


def write(experiment, assessed, predictions_path, metrics_path, rule_settings, **describe):
    predictions = scored_predictions(pairs, assessed, folds, section["missing_prediction"])
    metrics = score(predictions, folds, rule_settings, section["missing_prediction"], bootstrap, experiment,
                    source=settings.source, **describe)
    predictions.to_csv(predictions_path, sep="\t", index=False)
    with open(metrics_path, "w") as handle:
        json.dump(metrics, handle, indent=2)
    log.info("%s: median balanced accuracy over %d folds: %s", experiment, len(metrics["folds"]),
             metrics["median_balanced_accuracy"])


outputs = {
    "rano_rules": (snakemake.output.predictions, snakemake.output.metrics),
    "rano_rules_previous": (snakemake.output.predictions_previous, snakemake.output.metrics_previous),
}
missing_tables = []
with np.load(snakemake.input.lesions) as arrays:
    lesions = LesionPoints(arrays)
    for experiment, reference in RULES.items():
        assessed, missing = predict_pairs(pairs, measures, lesions, settings, reference)
        write(experiment, assessed, *outputs[experiment], settings)
        missing_tables.append(missing.assign(rule=experiment))
    assessed, missing = predict_expert(pairs, studies, measures, lesions, expert)
    write("rano_expert", assessed, snakemake.output.predictions_expert, snakemake.output.metrics_expert, expert,
          architecture=f"RANO 2010 as LUMIERE's raters practised it ({expert.method})")
    missing_tables.append(missing.assign(rule="rano_expert"))

missing = pd.concat(missing_tables, ignore_index=True)
missing["fold"] = missing["id"].map(fold_of_pairs(folds)).astype("Int64")
missing.to_csv(snakemake.output.missing, sep="\t", index=False)
