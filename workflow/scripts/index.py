import sys; sys.path.insert(0, str(__import__("pathlib").Path(snakemake.scriptdir).parent))  # noqa: E702

import logging
from pathlib import Path

from ranoflow.study_index import build_index, log_summary

logging.basicConfig(filename=snakemake.log[0], filemode="w", level=logging.INFO, format="%(levelname)s %(message)s")
logging.captureWarnings(True)

index = build_index(
    Path(snakemake.input.imaging).parent,
    snakemake.input.ratings,
    snakemake.input.completeness,
    snakemake.params.modalities,
)
index.studies.to_csv(snakemake.output.studies, sep="\t", index=False)
index.orphans.to_csv(snakemake.output.orphans, sep="\t", index=False)
logging.info(
    "%d study folders of %d patients; %d rating rows without a usable folder",
    len(index.studies),
    index.studies["patient"].nunique(),
    len(index.orphans),
)
log_summary("anomalies (logged, none fatal)", index.anomalies)
rated = index.studies[index.studies["has_rating_row"] == 1]
log_summary("study folders per normalised rating", rated["rating"].replace("", "(empty)").value_counts().to_dict())
logging.info("study folders flagged LessThan3Months: %d", rated["less_than_3_months"].sum())
