import sys; sys.path.insert(0, str(__import__("pathlib").Path(snakemake.scriptdir).parent))  # noqa: E702

from pathlib import Path

from ranoflow.dataset.generator import SyntheticConfig, generate_new_patients
from ranoflow.script_log import start_log

log = start_log(snakemake)
summary = generate_new_patients(
    SyntheticConfig.from_dict(snakemake.params.settings["synthetic"]),
    snakemake.params.settings["new_patients"],
    Path(snakemake.output.sheet).parent,
    snakemake.output.truth,
)
log.info("new patients outside the cohort: %s", summary)
