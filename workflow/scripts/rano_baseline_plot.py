import sys; sys.path.insert(0, str(__import__("pathlib").Path(snakemake.scriptdir).parent))  # noqa: E702

import json

import pandas as pd

from ranoflow.baseline.figures import baseline_figure
from ranoflow.script_log import start_log

log = start_log(snakemake)
predictions = pd.read_csv(snakemake.input.predictions, sep="\t")
with open(snakemake.input.metrics) as handle:
    metrics = json.load(handle)
baseline_figure(predictions, metrics).savefig(snakemake.output[0], dpi=120)
log.info("wrote %s", snakemake.output[0])
