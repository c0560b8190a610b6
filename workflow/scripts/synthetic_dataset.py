import sys; sys.path.insert(0, str(__import__("pathlib").Path(snakemake.scriptdir).parent))  # noqa: E702

import json
import logging
from pathlib import Path

from ranoflow.synthetic import SyntheticConfig, generate_dataset

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

summary = generate_dataset(
    SyntheticConfig.from_dict(snakemake.params.synthetic),
    root=Path(snakemake.output.ratings).parent,
    template_dir=Path(snakemake.output.template_head).parent,
    truth_dir=snakemake.output.truth,
    threads=snakemake.threads,
)
logging.info("summary %s", json.dumps(summary))
