import sys; sys.path.insert(0, str(__import__("pathlib").Path(snakemake.scriptdir).parent))  # noqa: E702

import json
import logging


from ranoflow.folds import make_folds
from ranoflow.tables import read_tsv

logging.basicConfig(filename=snakemake.log[0], filemode="w", level=logging.INFO, format="%(levelname)s %(message)s")
logging.captureWarnings(True)

settings = snakemake.params.folds
folds = make_folds(
    read_tsv(snakemake.input.pairs),
    protocol=settings["protocol"],
    k=settings["k"],
    seed=settings["seed"],
    val_fraction=settings["val_fraction"],
)
with open(snakemake.output.folds, "w") as handle:
    json.dump(folds, handle, indent=2)
    handle.write("\n")
