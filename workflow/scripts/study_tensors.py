import sys; sys.path.insert(0, str(__import__("pathlib").Path(snakemake.scriptdir).parent))  # noqa: E702

import json
from pathlib import Path

from ranoflow.script_log import start_log
from ranoflow.train.tensor_store import write_study_store

log = start_log(snakemake)
geometry = json.loads(Path(snakemake.input.grid).read_text())
log.info("%s", write_study_store(snakemake.input.study, geometry, snakemake.output.images, snakemake.output.mask))
