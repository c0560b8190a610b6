#!/usr/bin/env bash
# One-time set-up of the cluster profile: copies profiles/slurm to Snakemake's user profile directory
# (${XDG_CONFIG_HOME:-~/.config}/snakemake/slurm), where `snakemake --profile slurm` finds it. An
# existing profile there is left as it is. Edit the copy's cluster settings (account, partitions, GPU
# request) once; they then serve every clone of the workflow.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
target=${XDG_CONFIG_HOME:-$HOME/.config}/snakemake/slurm
if [[ -e $target/config.yaml ]]; then
    echo "Kept the existing profile $target/config.yaml (remove it to install the workflow's again)."
    exit 0
fi
mkdir -p "$target"
cp "$repo/profiles/slurm/config.yaml" "$target/config.yaml"
echo "Installed $target/config.yaml: set account, partition, gpu_partition and gpu_request at its top."
