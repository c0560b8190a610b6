import sys
from pathlib import Path

from snakemake.logging import logger
from snakemake.utils import min_version

min_version("9.0")

# The demo config's YAML error as one line naming the file, line and column (Snakemake's own names neither)
sys.path.insert(0, f"{workflow.basedir}/workflow")
from ranoflow.config_check import yaml_problem

if Path("config/config.yaml").exists() and yaml_problem("config/config.yaml"):
    logger.error(yaml_problem("config/config.yaml"))
    sys.exit(1)


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/dataset.smk"
include: "workflow/rules/index.smk"
include: "workflow/rules/preprocess.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/baseline.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/explain.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/predict.smk"


rule all:
    default_target: True
    input:
        get_final_output(),
