import sys; sys.path.insert(0, str(__import__("pathlib").Path(snakemake.scriptdir).parent))  # noqa: E702

from pathlib import Path

from ranoflow.report.front_page import front_page, headline, landing_table
from ranoflow.script_log import start_log
from ranoflow.tables import read_tsv

log = start_log(snakemake)
settings = snakemake.params.settings
summary = read_tsv(snakemake.input.summary)
page = front_page(summary, snakemake.input.ranking, snakemake.input.ablations, settings["experiments"],
                  settings["low_recall"])
Path(snakemake.output.html).write_text(page)
Path(snakemake.output.landing).write_text(landing_table(summary, snakemake.input.ranking, settings["experiments"], settings["low_recall"]))
log.info("%s", headline(summary, settings["experiments"], settings["low_recall"]))
