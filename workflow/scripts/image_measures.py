import sys; sys.path.insert(0, str(__import__("pathlib").Path(snakemake.scriptdir).parent))  # noqa: E702

import numpy as np

from ranoflow.baseline.image_segmentation import ImageSegmentationSettings, measure_manifest
from ranoflow.baseline.study_measures import MeasureSettings
from ranoflow.script_log import start_log
from ranoflow.tables import read_tsv

log = start_log(snakemake)
section = snakemake.params.settings["baseline"]
# the image-derived label maps use DeepBraTumIA's labels, whatever the dataset's segmentation source
measure = MeasureSettings.from_config({**section, "source": "deepbratumia", "volumes": "mask"})
table, arrays = measure_manifest(
    read_tsv(snakemake.input.manifest),
    ImageSegmentationSettings.from_config(section["image_rule"]),
    measure,
    snakemake.params.cache,
    workers=snakemake.threads,
)
table.to_csv(snakemake.output.measures, sep="\t", index=False)
np.savez(snakemake.output.lesions, **arrays)
