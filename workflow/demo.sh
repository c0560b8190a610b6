#!/usr/bin/env bash
# The demo command (README): sets up .venv, runs the whole workflow on the embedded synthetic
# LUMIERE-shaped data, then writes the HTML report.
#   bash workflow/demo.sh [extra snakemake args...]
set -euo pipefail
cd "$(dirname "$0")/.."
source workflow/setup_env.sh
cores=${CORES:-$(nproc)}
.venv/bin/snakemake --cores "$cores" --profile profiles/local "$@"
.venv/bin/snakemake --cores "$cores" --profile profiles/local --report results/report.html "$@"
echo "Done: results/metrics/summary.tsv, results/explain/summary.tsv, results/report.html"
