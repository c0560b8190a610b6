import sys; sys.path.insert(0, str(__import__("pathlib").Path(snakemake.scriptdir).parent))  # noqa: E702

import json
import logging
from pathlib import Path


from ranoflow import cohort
from ranoflow.report_html import html_page
from ranoflow.tables import read_tsv

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
logging.captureWarnings(True)



studies, pairs, excluded = read_tsv(snakemake.input.studies), read_tsv(snakemake.input.pairs), read_tsv(snakemake.input.excluded)
missing = read_tsv(snakemake.input.missing)
folds = json.loads(Path(snakemake.input.folds).read_text())

tables = {
    "overview": cohort.overview(studies, pairs, excluded),
    "pairs_per_class": cohort.pairs_per_class(pairs, folds),
    "exclusion_reasons": cohort.exclusion_reasons(excluded),
}
for name, table in tables.items():
    table.to_csv(snakemake.output[name], sep="\t", index=False)
sections = {
    "Cohort": tables["overview"],
    f"Pairs per RANO class (reference rule: {snakemake.params.reference}; folds: {folds.get('protocol')})": tables[
        "pairs_per_class"
    ],
    "Exclusion reasons": tables["exclusion_reasons"],
    "Excluded studies and rating rows": excluded,
    "Pairs without segmentation (rule-based baseline)": missing,
}
Path(snakemake.output.html).write_text(html_page("Cohort", sections))
logging.info("cohort: %s", tables["overview"].to_dict("records"))
