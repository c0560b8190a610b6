import sys; sys.path.insert(0, str(__import__("pathlib").Path(snakemake.scriptdir).parent))  # noqa: E702

import json
import logging
from pathlib import Path


from ranoflow.pretraining import pretrain_fold
from ranoflow.tables import read_tsv



logging.basicConfig(
    filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
)
logging.captureWarnings(True)
pretrain_fold(
    task=snakemake.params.task,
    pairs=read_tsv(snakemake.input.pairs),
    folds=json.loads(Path(snakemake.input.folds).read_text()),
    manifest=read_tsv(snakemake.input.manifest),
    fold=int(snakemake.wildcards.fold),
    weights_path=snakemake.output.weights,
    threads=snakemake.threads,
)
