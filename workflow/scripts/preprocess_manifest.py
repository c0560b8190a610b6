import sys; sys.path.insert(0, str(__import__("pathlib").Path(snakemake.scriptdir).parent))  # noqa: E702

from pathlib import Path

from ranoflow.preprocess.qc import aggregate, study_dirs
from ranoflow.script_log import start_log

log = start_log(snakemake)
registration, manifest = aggregate(study_dirs(snakemake.input.dirs), snakemake.params.settings["outlier_mad"])
for table, path in ((registration, snakemake.output.qc), (manifest, snakemake.output.manifest)):
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, sep="\t", index=False)
log.info("%d studies: %s", len(manifest), manifest["status"].value_counts().to_dict())
for row in manifest[manifest["status"] != "ok"].itertuples():
    log.warning("%s/%s %s: %s", row.patient, row.study, row.status, row.reason)
