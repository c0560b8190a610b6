import sys; sys.path.insert(0, str(__import__("pathlib").Path(snakemake.scriptdir).parent))  # noqa: E702

import logging

from ranoflow.image_io import configure_itk

configure_itk(snakemake.threads, snakemake.params.seed)  # before ANTs/ITK is first used

from ranoflow.preprocess_study import skull_strip_job  # noqa: E402

logging.basicConfig(filename=snakemake.log[0], filemode="w", level=logging.INFO, format="%(levelname)s %(message)s")
logging.captureWarnings(True)

inputs = dict(snakemake.input.items())
skull_strip_job(
    images={name.removeprefix("image_"): path for name, path in inputs.items() if name.startswith("image_")},
    mask_out=snakemake.output.mask,
    json_out=snakemake.output.json,
    settings=snakemake.params.skull_strip,
    anchor=snakemake.params.anchor,
    template_head=inputs.get("template_head"),
    template_mask=inputs.get("template_mask"),
    min_brain_ml=snakemake.params.min_brain_ml,
    on_error=snakemake.params.on_error,
)
