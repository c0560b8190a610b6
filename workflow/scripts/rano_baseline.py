import sys; sys.path.insert(0, str(__import__("pathlib").Path(snakemake.scriptdir).parent))  # noqa: E702

import json
import logging


from ranoflow import rano_baseline
from ranoflow.rano_rules import RuleSettings
from ranoflow.tables import read_tsv

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
logging.captureWarnings(True)

section = snakemake.params.baseline
settings = RuleSettings.from_config(section)
pairs = read_tsv(snakemake.input.pairs)
studies = read_tsv(snakemake.input.studies)
folds = json.loads(open(snakemake.input.folds).read())

assessed, missing = rano_baseline.predict_pairs(pairs, studies, settings, section["volumes"])
predictions = rano_baseline.scored_predictions(pairs, assessed, folds, section["missing_prediction"])
metrics = rano_baseline.score(
    predictions, folds, settings, section["missing_prediction"], snakemake.params.bootstrap
)

missing["fold"] = missing["id"].map(rano_baseline.fold_of_pairs(folds)).astype("Int64")
missing.to_csv(snakemake.output.missing, sep="\t", index=False)
predictions.to_csv(snakemake.output.predictions, sep="\t", index=False)
with open(snakemake.output.metrics, "w") as handle:
    json.dump(metrics, handle, indent=2)
logging.info("median balanced accuracy over %d folds: %s", len(metrics["folds"]), metrics["median_balanced_accuracy"])
