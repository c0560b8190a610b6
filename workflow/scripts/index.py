import sys; sys.path.insert(0, str(__import__("pathlib").Path(snakemake.scriptdir).parent))  # noqa: E702

from pathlib import Path

from ranoflow.index.studies import build_index, log_summary
from ranoflow.script_log import start_log

log = start_log(snakemake)
index = build_index(
    Path(snakemake.input.imaging).parent,
    snakemake.input.ratings,
    snakemake.input.completeness,
    snakemake.params.settings["modalities"],
)
index.studies.to_csv(snakemake.output.studies, sep="\t", index=False)
index.orphans.to_csv(snakemake.output.orphans, sep="\t", index=False)
log.info(
    "%d study folders of %d patients; %d rating rows without a usable folder",
    len(index.studies),
    index.studies["patient"].nunique(),
    len(index.orphans),
)
log_summary("anomalies (logged, none fatal)", index.anomalies)
rated = index.studies[index.studies["has_rating_row"] == 1]
log_summary("study folders per normalised rating", rated["rating"].replace("", "(empty)").value_counts().to_dict())
log.info("study folders flagged LessThan3Months: %d", rated["less_than_3_months"].sum())
