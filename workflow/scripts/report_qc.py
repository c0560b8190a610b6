import sys; sys.path.insert(0, str(__import__("pathlib").Path(snakemake.scriptdir).parent))  # noqa: E702

import logging
from pathlib import Path

import pandas as pd

from ranoflow import cohort
from ranoflow.report_html import html_page

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
logging.captureWarnings(True)

registration = pd.read_csv(snakemake.input.registration, sep="\t", keep_default_na=False)
flagged = cohort.flagged_studies(registration)
counts = registration.groupby("status").size().rename("studies").reset_index() if "status" in registration else None
sections = {"Studies per registration status": counts if counts is not None else registration.iloc[0:0]}
sections |= {"Flagged or failed studies": flagged, "All studies": registration}
Path(snakemake.output.html).write_text(html_page("Registration QC", sections))
logging.info("%d of %d studies flagged or failed", len(flagged), len(registration))
