import sys; sys.path.insert(0, str(__import__("pathlib").Path(snakemake.scriptdir).parent))  # noqa: E702

import numpy as np

from ranoflow.baseline.study_measures import MeasureSettings, measure_studies
from ranoflow.index.volumes import SEGMENTATION_COLUMN
from ranoflow.script_log import start_log
from ranoflow.tables import read_tsv

log = start_log(snakemake)
settings = MeasureSettings.from_config(snakemake.params.settings["baseline"])
table, arrays = measure_studies(
    read_tsv(snakemake.input.studies),
    SEGMENTATION_COLUMN[settings.source],
    settings,
    snakemake.params.cache,
    workers=snakemake.threads,
)
table.to_csv(snakemake.output.measures, sep="\t", index=False)
np.savez(snakemake.output.lesions, **arrays)
