import sys; sys.path.insert(0, str(__import__("pathlib").Path(snakemake.scriptdir).parent))  # noqa: E702

import logging


from ranoflow.explain_summary import selection_table
from ranoflow.tables import read_tsv

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

summary = read_tsv(snakemake.input.summary)
selection = selection_table(summary, snakemake.params.experiments, snakemake.params.listed, snakemake.params.best)
selection.to_csv(snakemake.output[0], sep="\t", index=False)
logging.info("experiments to explain:\n%s", selection.to_string(index=False))
