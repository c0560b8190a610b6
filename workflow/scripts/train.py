import sys; sys.path.insert(0, str(__import__("pathlib").Path(snakemake.scriptdir).parent))  # noqa: E702

import json
from pathlib import Path

from ranoflow.script_log import start_log
from ranoflow.tables import read_tsv
from ranoflow.train.fold import train_fold

start_log(snakemake, watch_parent=True)
train_fold(
    experiment=snakemake.params.settings["experiment"],
    pairs=read_tsv(snakemake.input.pairs),
    folds=json.loads(Path(snakemake.input.folds).read_text()),
    manifest=read_tsv(snakemake.input.manifest),
    fold=int(snakemake.wildcards.fold),
    out_dir=Path(snakemake.output.model).parent,
    pretrained=snakemake.input.get("pretrained") or None,
    threads=snakemake.threads,
    store_dir=Path(snakemake.input.grid).parent,
    load=snakemake.params.settings["store_load"],
    memory_mb=snakemake.resources.get("mem_mb"),
    volumes=read_tsv(snakemake.input.volumes) if snakemake.input.get("volumes") else None,
)
