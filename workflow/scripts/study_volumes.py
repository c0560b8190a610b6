import sys; sys.path.insert(0, str(__import__("pathlib").Path(snakemake.scriptdir).parent))  # noqa: E702

from ranoflow.index.volumes import study_volumes
from ranoflow.script_log import start_log
from ranoflow.tables import read_tsv

log = start_log(snakemake)
settings = snakemake.params.settings
table = study_volumes(read_tsv(snakemake.input.studies), settings["source"], settings["volumes"])
table.to_csv(snakemake.output.volumes, sep="\t", index=False)
