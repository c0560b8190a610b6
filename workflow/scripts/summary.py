import sys; sys.path.insert(0, str(__import__("pathlib").Path(snakemake.scriptdir).parent))  # noqa: E702

import json
from pathlib import Path

from ranoflow.evaluate.figures import plot_balanced_accuracy, plot_confusion
from ranoflow.evaluate.majority import majority_baseline
from ranoflow.evaluate.summary_table import summary_table
from ranoflow.script_log import start_log
from ranoflow.tables import read_tsv

log = start_log(snakemake)
experiments = [json.loads(Path(p).read_text()) for p in snakemake.input.experiments]
extra = [json.loads(Path(p).read_text()) for p in snakemake.input.extra]
pairs = read_tsv(snakemake.input.pairs)
folds = json.loads(Path(snakemake.input.folds).read_text())
baseline = majority_baseline(pairs, folds, snakemake.params.settings["bootstrap"], snakemake.params.settings["seed"])
Path(snakemake.output.baseline).write_text(json.dumps(baseline, indent=2))
table = summary_table([*experiments, *extra, baseline])
table.to_csv(snakemake.output.summary, sep="\t", index=False, float_format="%.4f")
log.info("summary:\n%s", table[["experiment", "median_balanced_accuracy"]].to_string(index=False))
plot_balanced_accuracy([*experiments, *extra, baseline], snakemake.output.accuracy_plot)
best = max(experiments, key=lambda d: d["balanced_accuracy"]["median"], default=baseline)
plot_confusion(best, snakemake.output.confusion_plot)
