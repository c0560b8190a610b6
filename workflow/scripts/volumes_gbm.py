import sys; sys.path.insert(0, str(__import__("pathlib").Path(snakemake.scriptdir).parent))  # noqa: E702

import json

import numpy as np

from ranoflow.baseline.expert_rule import ExpertSettings
from ranoflow.baseline.scoring import PAIR_COLUMNS, fold_of_pairs, read_inputs, score
from ranoflow.baseline.study_measures import LesionPoints
from ranoflow.baseline.volumes_gbm import GbmSettings, pair_features, predict_folds
from ranoflow.script_log import start_log
from ranoflow.vocabulary import CLASSES

log = start_log(snakemake)
section = snakemake.params.settings["baseline"]
expert = ExpertSettings.from_config(section["expert"])
settings = GbmSettings.from_config(section["volumes_gbm"])
pairs, studies, measures, folds = read_inputs(
    snakemake.input.pairs, snakemake.input.studies, snakemake.input.measures, snakemake.input.folds
)

with np.load(snakemake.input.lesions) as arrays:
    features = pair_features(pairs, studies, measures, LesionPoints(arrays), expert, settings)
log.info("%d pairs with features (%d features), %d without a measured current study",
         len(features), features.shape[1], len(pairs) - len(features))
predicted, choices = predict_folds(pairs, features, folds, settings, workers=snakemake.threads)
predictions = pairs[PAIR_COLUMNS].merge(predicted.drop(columns="fold"), on="id", how="left")
predictions["fold"] = predictions["id"].map(fold_of_pairs(folds)).astype("Int64")
predictions["segmentation"] = np.where(predictions["predicted"].isna(), "missing", "ok")
fallback = section["missing_prediction"]
if fallback != "exclude":
    unscored = predictions["predicted"].isna() & predictions["fold"].notna()
    predictions.loc[unscored, "predicted"] = fallback
    for name in CLASSES:
        predictions.loc[unscored, f"prob_{name}"] = float(name == fallback)
metrics = score(predictions, folds, settings, fallback, snakemake.params.settings["bootstrap"], "volumes_gbm",
                source=section["source"], architecture="gradient boosting on segmentation measures (scikit-learn)")
metrics["leaky"] = bool(folds.get("protocol") == "paper")  # the paper protocol tunes on the test fold
metrics["fold_choices"] = choices
metrics["features"] = list(features.columns)
predictions.to_csv(snakemake.output.predictions, sep="\t", index=False)
with open(snakemake.output.metrics, "w") as handle:
    json.dump(metrics, handle, indent=2)
log.info("volumes_gbm: median balanced accuracy over %d folds: %s", len(metrics["folds"]),
         metrics["median_balanced_accuracy"])
