import sys; sys.path.insert(0, str(__import__("pathlib").Path(snakemake.scriptdir).parent))  # noqa: E702

import json
from pathlib import Path

from ranoflow.script_log import start_log
from ranoflow.train.tensor_store import grid_geometry

log = start_log(snakemake)
grid = snakemake.params.settings
geometry = grid_geometry(snakemake.input.atlas_mask, grid["image_size"], grid["fit"], grid["margin_voxels"])
Path(snakemake.output[0]).write_text(json.dumps(geometry, indent=2))
log.info("training grid: %s", geometry)
