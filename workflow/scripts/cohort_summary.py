import sys; sys.path.insert(0, str(__import__("pathlib").Path(snakemake.scriptdir).parent))  # noqa: E702

import json
from pathlib import Path

from ranoflow.report import cohort
from ranoflow.report.html_page import html_page
from ranoflow.script_log import start_log
from ranoflow.tables import read_tsv

log = start_log(snakemake)
studies, pairs = read_tsv(snakemake.input.studies), read_tsv(snakemake.input.pairs)
excluded, missing = read_tsv(snakemake.input.excluded), read_tsv(snakemake.input.missing)
folds = json.loads(Path(snakemake.input.folds).read_text())

tables = {
    "overview": cohort.overview(studies, pairs, excluded),
    "pairs_per_class": cohort.pairs_per_class(pairs, folds),
    "exclusion_reasons": cohort.exclusion_reasons(excluded),
}
for name, table in tables.items():
    table.to_csv(snakemake.output[name], sep="\t", index=False)
reference, protocol = snakemake.params.settings["reference"], folds.get("protocol")
sections = {
    "Cohort": tables["overview"],
    f"Pairs per RANO class (reference rule: {reference}; folds: {protocol})": tables["pairs_per_class"],
    "Exclusion reasons": tables["exclusion_reasons"],
    "Excluded studies and rating rows": excluded,
    "Pairs without segmentation (rule-based baseline)": missing,
}
Path(snakemake.output.html).write_text(html_page("Cohort", sections))
log.info("cohort: %s", tables["overview"].to_dict("records"))
