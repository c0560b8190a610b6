import sys; sys.path.insert(0, str(__import__("pathlib").Path(snakemake.scriptdir).parent))  # noqa: E702

import logging
from pathlib import Path

import yaml

from ranoflow.report_html import html_page
from ranoflow.provenance import software_versions

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
logging.captureWarnings(True)

versions = software_versions(snakemake.input.pyproject, {"snakemake": snakemake.params.snakemake_version})
versions.to_csv(snakemake.output.versions, sep="\t", index=False)
config_text = yaml.safe_dump(snakemake.params.config, sort_keys=False)
Path(snakemake.output.config).write_text(config_text)
sections = {"Software versions": versions, "Configuration (after schema defaults)": config_text}
Path(snakemake.output.html).write_text(html_page("Software versions and configuration", sections))
logging.info("recorded %d packages", len(versions))
