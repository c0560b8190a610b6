import sys; sys.path.insert(0, str(__import__("pathlib").Path(snakemake.scriptdir).parent))  # noqa: E702

import json
from pathlib import Path

import pandas as pd

from ranoflow.evaluate.ablations import ablation_differences, information_ceiling
from ranoflow.evaluate.common_pairs import compare_rows
from ranoflow.evaluate.figures import plot_ablations, plot_balanced_accuracy, plot_confusion_grid, plot_ranking
from ranoflow.evaluate.majority import majority_baseline, majority_predictions
from ranoflow.evaluate.summary_table import is_oracle, summary_table
from ranoflow.script_log import start_log
from ranoflow.tables import read_tsv

log = start_log(snakemake)
settings = snakemake.params.settings
pairs = read_tsv(snakemake.input.pairs)
folds = json.loads(Path(snakemake.input.folds).read_text())
# Every row (experiment or baseline) comes as its metrics JSON and its predictions TSV, in the same order.
own, predictions = {}, {}
for doc_path, predictions_path in zip(
    [*snakemake.input.experiments, *snakemake.input.baselines],
    [*snakemake.input.experiment_predictions, *snakemake.input.baseline_predictions],
    strict=True,
):
    doc = json.loads(Path(doc_path).read_text())
    own[doc["experiment"]] = doc
    predictions[doc["experiment"]] = read_tsv(predictions_path)
baseline = majority_baseline(pairs, folds, settings["bootstrap"], settings["seed"])
Path(snakemake.output.baseline).write_text(json.dumps(baseline, indent=2))
own[baseline["experiment"]] = baseline
predictions[baseline["experiment"]] = pd.concat(majority_predictions(pairs, folds).values(), ignore_index=True)

docs, per_fold, on_common = compare_rows(own, predictions, folds, pairs, settings["bootstrap"], settings["seed"])
per_fold.to_csv(snakemake.output.folds, sep="\t", index=False, float_format="%.4f")
log.info("common test pairs per fold:\n%s", per_fold.to_string(index=False))
experiments = settings["experiment_settings"]
differences = ablation_differences(
    on_common, experiments, settings["evaluate"]["reference_experiment"],
    settings["evaluate"]["bootstrap"], settings["seed"],
)
ceilings = {name: information_ceiling(e["references"], set(own)) for name, e in experiments.items()}
table = summary_table(docs, differences, ceilings)
table.to_csv(snakemake.output.summary, sep="\t", index=False, float_format="%.4f")
log.info(
    "summary:\n%s",
    table[["experiment", "median_balanced_accuracy", "n_pairs", "delta_balanced_accuracy", "verdict", "own_n_pairs"]]
    .to_string(index=False),
)
plot_balanced_accuracy(docs, snakemake.output.accuracy_plot)
plot_ranking(table, snakemake.output.ranking_plot)
by_name = {doc["experiment"]: doc for doc in docs}
oracles = {row.experiment for row in table.itertuples() if is_oracle(row.oracle)}
plot_confusion_grid([by_name[name] for name in table["experiment"]], snakemake.output.confusion_plot, oracles)
plot_ablations(table, snakemake.output.ablation_plot)
