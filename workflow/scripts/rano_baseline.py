import sys; sys.path.insert(0, str(__import__("pathlib").Path(snakemake.scriptdir).parent))  # noqa: E702

import json

from ranoflow.baseline.criteria import RuleSettings
from ranoflow.baseline.scoring import fold_of_pairs, predict_pairs, score, scored_predictions
from ranoflow.script_log import start_log
from ranoflow.tables import read_tsv

log = start_log(snakemake)
section = snakemake.params.settings["baseline"]
settings = RuleSettings.from_config(section)
pairs = read_tsv(snakemake.input.pairs)
studies = read_tsv(snakemake.input.studies)
with open(snakemake.input.folds) as handle:
    folds = json.load(handle)

assessed, missing = predict_pairs(pairs, studies, settings, section["volumes"])
predictions = scored_predictions(pairs, assessed, folds, section["missing_prediction"])
metrics = score(predictions, folds, settings, section["missing_prediction"], snakemake.params.settings["bootstrap"])

missing["fold"] = missing["id"].map(fold_of_pairs(folds)).astype("Int64")
missing.to_csv(snakemake.output.missing, sep="\t", index=False)
predictions.to_csv(snakemake.output.predictions, sep="\t", index=False)
with open(snakemake.output.metrics, "w") as handle:
    json.dump(metrics, handle, indent=2)
log.info("median balanced accuracy over %d folds: %s", len(metrics["folds"]), metrics["median_balanced_accuracy"])
