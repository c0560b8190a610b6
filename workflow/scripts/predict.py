import sys; sys.path.insert(0, str(__import__("pathlib").Path(snakemake.scriptdir).parent))  # noqa: E702

from pathlib import Path

import torch

from ranoflow.predict.rating import rate_follow_ups
from ranoflow.predict.sheet import read_sheet
from ranoflow.script_log import start_log

log = start_log(snakemake)
torch.set_num_threads(max(int(snakemake.threads), 1))
settings = snakemake.params.settings
ratings = rate_follow_ups(
    read_sheet(snakemake.input.sheet, settings["input"]),
    {Path(folder).name: Path(folder) for folder in snakemake.input.studies},
    snakemake.input.model[0],
    Path(snakemake.output.rating).parent,
    saliency=settings["saliency"],
)
log.info("rated %d follow-up(s) with %s:\n%s", len(ratings), settings["experiment"], ratings.to_string(index=False))
