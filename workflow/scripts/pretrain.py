import sys; sys.path.insert(0, str(__import__("pathlib").Path(snakemake.scriptdir).parent))  # noqa: E702

import json
from pathlib import Path

from ranoflow.script_log import start_log
from ranoflow.tables import read_tsv
from ranoflow.train.pretext import pretrain_fold

start_log(snakemake, watch_parent=True)
pretrain_fold(
    task=snakemake.params.settings["task"],
    pairs=read_tsv(snakemake.input.pairs),
    folds=json.loads(Path(snakemake.input.folds).read_text()),
    manifest=read_tsv(snakemake.input.manifest),
    fold=int(snakemake.wildcards.fold),
    weights_path=snakemake.output.weights,
    summary_path=snakemake.output.summary,
    threads=snakemake.threads,
    store_dir=Path(snakemake.input.grid).parent,
    load=snakemake.params.settings["store_load"],
    memory_mb=snakemake.resources.get("mem_mb"),
)
