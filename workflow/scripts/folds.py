import sys; sys.path.insert(0, str(__import__("pathlib").Path(snakemake.scriptdir).parent))  # noqa: E702

import json

from ranoflow.index.folds import make_folds
from ranoflow.script_log import start_log
from ranoflow.tables import read_tsv

start_log(snakemake)
settings = snakemake.params.settings["folds"]
folds = make_folds(
    read_tsv(snakemake.input.pairs),
    protocol=settings["protocol"],
    k=settings["k"],
    seed=settings["seed"],
    val_fraction=settings["val_fraction"],
    strict=settings["strict"],
)
with open(snakemake.output.folds, "w") as handle:
    json.dump(folds, handle, indent=2)
    handle.write("\n")
