import sys; sys.path.insert(0, str(__import__("pathlib").Path(snakemake.scriptdir).parent))  # noqa: E702

import json
from pathlib import Path

from ranoflow.script_log import start_log
from ranoflow.train.tensor_store import write_study_store

log = start_log(snakemake)
geometry = json.loads(Path(snakemake.input.grid).read_text())
out = Path(snakemake.output[0])
for study in sorted(p for p in Path(snakemake.input.patient).iterdir() if p.is_dir()):
    log.info("%s", write_study_store(study, geometry, out / f"{study.name}.npy", out / f"{study.name}_mask.npy"))
