import sys; sys.path.insert(0, str(__import__("pathlib").Path(snakemake.scriptdir).parent))  # noqa: E702

from pathlib import Path

import pandas as pd

from ranoflow.report.explanations import explanations_page, method_rates
from ranoflow.script_log import start_log

log = start_log(snakemake)
settings = snakemake.params.settings
summary = pd.read_csv(snakemake.input.explain, sep="\t", dtype={"fold": str})
# each explain folder is results/explain/<experiment>/fold_<k>
directories = {(Path(d).parent.name, Path(d).name.removeprefix("fold_")): d for d in snakemake.input.dirs}
Path(snakemake.output.html).write_text(explanations_page(summary, directories, settings["min_pointing_hit_rate"]))
log.info("pointing-game hit rates:\n%s", method_rates(summary, settings["min_pointing_hit_rate"]).to_string(index=False))
