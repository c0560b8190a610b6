import sys; sys.path.insert(0, str(__import__("pathlib").Path(snakemake.scriptdir).parent))  # noqa: E702

import json

import numpy as np

from ranoflow.baseline.expert_rule import ExpertSettings
from ranoflow.baseline.image_rule import EXPERIMENT, fit_folds, rate_candidates, rate_test_pairs
from ranoflow.baseline.image_segmentation import ImageSegmentationSettings
from ranoflow.baseline.scoring import read_inputs, score, scored_predictions
from ranoflow.script_log import start_log

log = start_log(snakemake)
section = snakemake.params.settings["baseline"]
expert = ExpertSettings.from_config(section["expert"])
thresholds = list(ImageSegmentationSettings.from_config(section["image_rule"]).thresholds)
missing_prediction = section["missing_prediction"]
pairs, studies, measures, folds = read_inputs(
    snakemake.input.pairs, snakemake.input.studies, snakemake.input.measures, snakemake.input.folds
)
with np.load(snakemake.input.lesions) as arrays:
    rated = rate_candidates(pairs, studies, measures, arrays, thresholds, expert)
fitted = fit_folds(rated, pairs, folds, thresholds, missing_prediction)
assessed, missing = rate_test_pairs(rated, folds, fitted)
predictions = scored_predictions(pairs, assessed, folds, missing_prediction)
metrics = score(predictions, folds, expert, missing_prediction, snakemake.params.settings["bootstrap"], EXPERIMENT,
                source="image", architecture=f"RANO 2010 as LUMIERE's raters practised it ({expert.method}) on "
                "image-derived segmentations (CT1 - T1 enhancement threshold fitted per fold on training pairs)")
metrics["fitted_thresholds"] = fitted
predictions.to_csv(snakemake.output.predictions, sep="\t", index=False)
missing.to_csv(snakemake.output.missing, sep="\t", index=False)
with open(snakemake.output.metrics, "w") as handle:
    json.dump(metrics, handle, indent=2)
log.info("%s: median balanced accuracy over %d folds: %s (thresholds %s)", EXPERIMENT, len(metrics["folds"]),
         metrics["median_balanced_accuracy"], [fit["threshold"] for fit in fitted])
