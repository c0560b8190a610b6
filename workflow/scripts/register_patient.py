import sys; sys.path.insert(0, str(__import__("pathlib").Path(snakemake.scriptdir).parent))  # noqa: E702

from ranoflow.preprocess.image_io import configure_itk
from ranoflow.script_log import start_log

start_log(snakemake)
settings = snakemake.params.settings
configure_itk(snakemake.threads, settings["seed"])  # before ANTs/ITK is first used

from ranoflow.preprocess.batch import register_patient  # noqa: E402

register_patient(dict(snakemake.input.items()), snakemake.output[0], settings)
