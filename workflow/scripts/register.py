import sys; sys.path.insert(0, str(__import__("pathlib").Path(snakemake.scriptdir).parent))  # noqa: E702

from ranoflow.preprocess.image_io import configure_itk
from ranoflow.script_log import start_log

start_log(snakemake)
settings = snakemake.params.settings
configure_itk(snakemake.threads, settings["seed"])  # before ANTs/ITK is first used

from ranoflow.preprocess.register_job import register_job  # noqa: E402

inputs = dict(snakemake.input.items())
strip_settings = settings["skull_strip"]
if strip_settings is not None:
    strip_settings = strip_settings | {"template_head": inputs.get("template_head"),
                                       "template_mask": inputs.get("template_mask")}
register_job(
    images={name.removeprefix("image_"): path for name, path in inputs.items() if name.startswith("image_")},
    out_dir=snakemake.output[0],
    grid_paths={key: inputs[key] for key in ("brain", "brain_mask", "registration_brain")},
    settings=settings,
    strip_json=inputs.get("strip"),
    mask_path=inputs.get("mask"),
    segmentation=inputs.get("seg"),
    reference_dir=inputs.get("reference"),
    on_error=settings["on_error"],
    strip_settings=strip_settings,
)
