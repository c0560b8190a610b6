import sys; sys.path.insert(0, str(__import__("pathlib").Path(snakemake.scriptdir).parent))  # noqa: E702

import json
import logging
from pathlib import Path


from ranoflow.tables import read_tsv
from ranoflow.training import train_fold



logging.basicConfig(
    filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
)
logging.captureWarnings(True)
pretrained = snakemake.input.pretrained if "pretrained" in snakemake.input.keys() else None
train_fold(
    experiment=snakemake.params.experiment,
    pairs=read_tsv(snakemake.input.pairs),
    folds=json.loads(Path(snakemake.input.folds).read_text()),
    manifest=read_tsv(snakemake.input.manifest),
    fold=int(snakemake.wildcards.fold),
    out_dir=Path(snakemake.output.model).parent,
    pretrained=pretrained or None,
    threads=snakemake.threads,
)
