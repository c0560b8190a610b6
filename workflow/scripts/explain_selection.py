import sys; sys.path.insert(0, str(__import__("pathlib").Path(snakemake.scriptdir).parent))  # noqa: E702

from ranoflow.explain.selection import selection_table
from ranoflow.script_log import start_log
from ranoflow.tables import read_tsv

log = start_log(snakemake)
summary = read_tsv(snakemake.input.summary)
settings = snakemake.params.settings
selection = selection_table(summary, settings["experiments"], settings["listed"], settings["best"])
selection.to_csv(snakemake.output[0], sep="\t", index=False)
log.info("experiments to explain:\n%s", selection.to_string(index=False))
