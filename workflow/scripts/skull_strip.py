import sys; sys.path.insert(0, str(__import__("pathlib").Path(snakemake.scriptdir).parent))  # noqa: E702

from ranoflow.preprocess.image_io import configure_itk
from ranoflow.script_log import start_log

start_log(snakemake)
configure_itk(snakemake.threads, snakemake.params.settings["seed"])  # before ANTs/ITK is first used

from ranoflow.preprocess.skull_strip import skull_strip_job  # noqa: E402

inputs = dict(snakemake.input.items())
settings = snakemake.params.settings
skull_strip_job(
    images={name.removeprefix("image_"): path for name, path in inputs.items() if name.startswith("image_")},
    mask_out=snakemake.output.mask,
    json_out=snakemake.output.json,
    settings=settings["skull_strip"],
    anchor=settings["anchor"],
    template_head=inputs.get("template_head"),
    template_mask=inputs.get("template_mask"),
    min_brain_ml=settings["min_brain_ml"],
    on_error=settings["on_error"],
)
