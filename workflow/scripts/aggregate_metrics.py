import sys; sys.path.insert(0, str(__import__("pathlib").Path(snakemake.scriptdir).parent))  # noqa: E702

import json
import logging
from pathlib import Path


from ranoflow import aggregate, plots
from ranoflow.tables import read_tsv

logging.basicConfig(
    filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
)
log = logging.getLogger("aggregate_metrics")

if snakemake.rule == "aggregate_experiment":
    experiment = snakemake.params.experiment
    doc = aggregate.aggregate_experiment(
        experiment,
        [Path(p).parent for p in snakemake.input.metrics],
        bootstrap=experiment["training"]["bootstrap"],
        seed=experiment["training"]["seed"],
    )
    Path(snakemake.output[0]).write_text(json.dumps(doc, indent=2))
    log.info("%s: median balanced accuracy %.3f", experiment["name"], doc["median_balanced_accuracy"])
else:
    experiments = [json.loads(Path(p).read_text()) for p in snakemake.input.experiments]
    extra = [json.loads(Path(p).read_text()) for p in snakemake.input.extra]
    pairs = read_tsv(snakemake.input.pairs)
    folds = json.loads(Path(snakemake.input.folds).read_text())
    baseline = aggregate.majority_baseline(pairs, folds, snakemake.params.bootstrap, snakemake.params.seed)
    Path(snakemake.output.baseline).write_text(json.dumps(baseline, indent=2))
    table = aggregate.summary_table([*experiments, *extra, baseline])
    table.to_csv(snakemake.output.summary, sep="\t", index=False, float_format="%.4f")
    log.info("summary:\n%s", table[["experiment", "median_balanced_accuracy"]].to_string(index=False))
    plots.plot_balanced_accuracy([*experiments, *extra, baseline], snakemake.output.accuracy_plot)
    best = max(experiments, key=lambda d: d["balanced_accuracy"]["median"], default=baseline)
    plots.plot_confusion(best, snakemake.output.confusion_plot)
