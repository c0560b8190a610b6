import sys; sys.path.insert(0, str(__import__("pathlib").Path(snakemake.scriptdir).parent))  # noqa: E702

from pathlib import Path

import yaml

from ranoflow.report.html_page import html_page
from ranoflow.report.provenance import software_versions
from ranoflow.script_log import start_log

log = start_log(snakemake)
settings = snakemake.params.settings
versions = software_versions(settings["pins"], {"snakemake": settings["snakemake_version"]})
versions.to_csv(snakemake.output.versions, sep="\t", index=False)
config_text = yaml.safe_dump(settings["config"], sort_keys=False)
Path(snakemake.output.config).write_text(config_text)
sections = {"Software versions": versions, "Configuration (after schema defaults)": config_text}
Path(snakemake.output.html).write_text(html_page("Software versions and configuration", sections))
log.info("recorded %d packages", len(versions))
