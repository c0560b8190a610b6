import sys; sys.path.insert(0, str(__import__("pathlib").Path(snakemake.scriptdir).parent))  # noqa: E702

import logging
from pathlib import Path

import pandas as pd

from ranoflow.report_html import html_page

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
logging.captureWarnings(True)

# params.tables: input name -> heading, in display order.
sections = {heading: pd.read_csv(snakemake.input[name], sep="\t") for name, heading in snakemake.params.tables.items()}
Path(snakemake.output.html).write_text(html_page(snakemake.params.title, sections))
logging.info("rendered %s", ", ".join(sections))
