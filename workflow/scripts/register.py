import sys; sys.path.insert(0, str(__import__("pathlib").Path(snakemake.scriptdir).parent))  # noqa: E702

from ranoflow.preprocess.image_io import configure_itk
from ranoflow.script_log import start_log

start_log(snakemake)
configure_itk(snakemake.threads, snakemake.params.seed)  # before ANTs/ITK is first used

from ranoflow.preprocess.register_job import register_job  # noqa: E402

inputs = dict(snakemake.input.items())
params = snakemake.params
register_job(
    images={name.removeprefix("image_"): path for name, path in inputs.items() if name.startswith("image_")},
    out_dir=snakemake.output[0],
    grid_paths={key: inputs[key] for key in ("brain", "brain_mask", "registration_brain")},
    settings={
        "input": params.input,
        "atlas_transform": params.atlas_transform,
        "registration_mm": params.registration_mm,
        "n4": params.n4,
        "qc": params.qc,
        "segmentation_space": params.segmentation_space,
        "segmentation_source": params.segmentation_source,
    },
    strip_json=inputs.get("strip"),
    mask_path=inputs.get("mask"),
    segmentation=inputs.get("seg"),
    reference_dir=inputs.get("reference"),
    on_error=params.on_error,
)
