import sys; sys.path.insert(0, str(__import__("pathlib").Path(snakemake.scriptdir).parent))  # noqa: E702

import logging


from ranoflow.pairs import build_pairs, read_studies
from ranoflow.study_index import log_summary, read_demographics
from ranoflow.tables import read_tsv

logging.basicConfig(filename=snakemake.log[0], filemode="w", level=logging.INFO, format="%(levelname)s %(message)s")
logging.captureWarnings(True)

pairs, excluded = build_pairs(
    read_studies(snakemake.input.studies),
    read_tsv(snakemake.input.orphans),
    read_demographics(snakemake.input.demographics),
    reference=snakemake.params.reference,
    modalities=snakemake.params.modalities,
    exclude_less_than_3_months=snakemake.params.exclude_less_than_3_months,
)
pairs.to_csv(snakemake.output.pairs, sep="\t", index=False)
excluded.to_csv(snakemake.output.excluded, sep="\t", index=False)
logging.info(
    "reference rule %r: %d scorable pairs of %d patients",
    snakemake.params.reference,
    len(pairs),
    pairs["patient"].nunique(),
)
log_summary("pairs per label", pairs["label"].value_counts().to_dict())
log_summary("pairs per modality set", pairs["modalities"].value_counts().to_dict())
logging.info("pairs rated within 3 months after radiotherapy (LessThan3Months): %d", pairs["less_than_3_months"].sum())
log_summary("excluded studies and rating rows", excluded["reason"].value_counts().to_dict())
