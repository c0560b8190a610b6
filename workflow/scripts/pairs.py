import sys; sys.path.insert(0, str(__import__("pathlib").Path(snakemake.scriptdir).parent))  # noqa: E702

from ranoflow.index.demographics import read_demographics
from ranoflow.index.pairs import build_pairs, read_studies
from ranoflow.index.studies import log_summary
from ranoflow.script_log import start_log
from ranoflow.tables import read_tsv

log = start_log(snakemake)
settings = snakemake.params.settings
pairs, excluded = build_pairs(
    read_studies(snakemake.input.studies),
    read_tsv(snakemake.input.orphans),
    read_demographics(snakemake.input.demographics),
    reference=settings["reference"],
    modalities=settings["modalities"],
    exclude_less_than_3_months=settings["exclude_less_than_3_months"],
)
pairs.to_csv(snakemake.output.pairs, sep="\t", index=False)
excluded.to_csv(snakemake.output.excluded, sep="\t", index=False)
log.info(
    "reference rule %r: %d scorable pairs of %d patients",
    settings["reference"],
    len(pairs),
    pairs["patient"].nunique(),
)
log_summary("pairs per label", pairs["label"].value_counts().to_dict())
log_summary("pairs per modality set", pairs["modalities"].value_counts().to_dict())
log.info("pairs rated within 3 months after radiotherapy (LessThan3Months): %d", pairs["less_than_3_months"].sum())
log_summary("excluded studies and rating rows", excluded["reason"].value_counts().to_dict())
