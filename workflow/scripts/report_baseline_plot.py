import sys; sys.path.insert(0, str(__import__("pathlib").Path(snakemake.scriptdir).parent))  # noqa: E702

import json
import logging

import pandas as pd

from ranoflow.report_figures import baseline_figure

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
logging.captureWarnings(True)

predictions = pd.read_csv(snakemake.input.predictions, sep="\t")
metrics = json.loads(open(snakemake.input.metrics).read())
baseline_figure(predictions, metrics).savefig(snakemake.output[0], dpi=120)
logging.info("wrote %s", snakemake.output[0])
