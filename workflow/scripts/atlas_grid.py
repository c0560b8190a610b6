import sys; sys.path.insert(0, str(__import__("pathlib").Path(snakemake.scriptdir).parent))  # noqa: E702

from ranoflow.script_log import start_log
from ranoflow.preprocess.image_io import configure_itk

log = start_log(snakemake)
configure_itk(snakemake.threads, None)  # before ANTs/ITK is first used

from ranoflow.preprocess.image_io import load_volume, save_volume  # noqa: E402
from ranoflow.preprocess.registration import make_atlas_grid  # noqa: E402

settings = snakemake.params.settings
grid = make_atlas_grid(
    load_volume(snakemake.input.template_head),
    load_volume(snakemake.input.template_mask),
    settings["spacing_mm"],
    settings["margin_mm"],
    settings["registration_mm"],
)
save_volume(grid.brain, snakemake.output.brain, "float32")
save_volume(grid.mask, snakemake.output.brain_mask, "uint8")
save_volume(grid.registration, snakemake.output.registration_brain, "float32")
log.info(
    "output grid %s at %s mm; registration atlas at %s mm", grid.brain.shape, settings["spacing_mm"], settings["registration_mm"]
)
