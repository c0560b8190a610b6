import sys; sys.path.insert(0, str(__import__("pathlib").Path(snakemake.scriptdir).parent))  # noqa: E702

from pathlib import Path

import pandas as pd

from ranoflow.report import cohort
from ranoflow.report.html_page import html_page
from ranoflow.script_log import start_log

log = start_log(snakemake)
registration = pd.read_csv(snakemake.input.registration, sep="\t", keep_default_na=False)
flagged = cohort.flagged_studies(registration)
counts = registration.groupby("status").size().rename("studies").reset_index() if "status" in registration else None
sections = {"Studies per registration status": counts if counts is not None else registration.iloc[0:0]}
sections |= {"Flagged or failed studies": flagged, "All studies": registration}
Path(snakemake.output.html).write_text(html_page("Registration QC", sections))
log.info("%d of %d studies flagged or failed", len(flagged), len(registration))
