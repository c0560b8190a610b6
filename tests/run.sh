#!/usr/bin/env bash
# The test command (README, .ci/run): sets up everything the suite needs, then runs pytest.
#   bash tests/run.sh [pytest args...]
# Set-up: a virtualenv in .venv with the pinned dependencies of pyproject.toml, and (as root, unless
# RANOFLOW_SLURM=0) a real single-node Slurm 22.05 cluster for the cluster tests, stopped again at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
source workflow/setup_env.sh

if [[ "${RANOFLOW_SLURM:-1}" == 1 && $(id -u) == 0 ]]; then
    bash tests/slurm/start_cluster.sh
    trap 'bash tests/slurm/stop_cluster.sh' EXIT
fi

export PYTHONHASHSEED=0
# Two workers by default (CI has 2 cores): the Slurm run waits on the cluster most of its time.
.venv/bin/python -m pytest -ra --durations=15 -n "${RANOFLOW_TEST_WORKERS:-2}" "$@"
