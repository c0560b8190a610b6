# Sourced by the demo and test commands: creates .venv with the pinned dependencies when missing or
# when pyproject.toml changed since the last install.
set -euo pipefail
if [[ ! -x .venv/bin/python ]]; then
    python3 -m venv .venv
fi
stamp=.venv/.ranoflow-installed
if [[ ! -f $stamp ]] || ! cmp -s pyproject.toml "$stamp"; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    # torch==2.13.0 is pinned in pyproject.toml: the CPU wheel on CPU-only machines.
    .venv/bin/python -m pip install --quiet -e .
    cp pyproject.toml "$stamp"
fi
