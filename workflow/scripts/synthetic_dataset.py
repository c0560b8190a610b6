import sys; sys.path.insert(0, str(__import__("pathlib").Path(snakemake.scriptdir).parent))  # noqa: E702

import json
from pathlib import Path

from ranoflow.dataset.generator import SyntheticConfig, generate_dataset
from ranoflow.script_log import start_log

log = start_log(snakemake)
summary = generate_dataset(
    SyntheticConfig.from_dict(snakemake.params.settings["synthetic"]),
    root=Path(snakemake.output.ratings).parent,
    template_dir=Path(snakemake.output.template_head).parent,
    truth_dir=snakemake.output.truth,
    threads=snakemake.threads,
)
log.info("summary %s", json.dumps(summary))
