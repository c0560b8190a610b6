import sys; sys.path.insert(0, str(__import__("pathlib").Path(snakemake.scriptdir).parent))  # noqa: E702

from pathlib import Path

import pandas as pd

from ranoflow.report.html_page import html_page
from ranoflow.script_log import start_log

log = start_log(snakemake)
settings = snakemake.params.settings
# settings["tables"]: [input name, heading] in display order
sections = {heading: pd.read_csv(snakemake.input[name], sep="\t") for name, heading in settings["tables"]}
Path(snakemake.output.html).write_text(html_page(settings["title"], sections))
log.info("rendered %s", ", ".join(sections))
