# Sourced by the demo and test commands: creates .venv with the pinned dependencies when missing or
# when pyproject.toml changed since the last install.
set -euo pipefail

# The newest Python the pinned dependencies support (pyproject.toml requires-python); RANOFLOW_PYTHON
# names another interpreter.
pick_python() {
    local candidate
    for candidate in ${RANOFLOW_PYTHON:-} python3.13 python3.12 python3.11 python3; do
        if command -v "$candidate" >/dev/null &&
            "$candidate" -c 'import sys, venv; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 13))' 2>/dev/null; then
            echo "$candidate"
            return
        fi
    done
    return 1
}

if [[ ! -x .venv/bin/python ]]; then
    if ! python=$(pick_python); then
        echo "ranoflow needs Python 3.11, 3.12 or 3.13 with its venv module (none on PATH; install one, e.g. apt-get install python3.12-venv, or set RANOFLOW_PYTHON=/path/to/python3.12)" >&2
        exit 1
    fi
    "$python" -m venv .venv
fi
stamp=.venv/.ranoflow-installed
if [[ ! -f $stamp ]] || ! cmp -s pyproject.toml "$stamp"; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    # torch==2.13.0 as pinned in pyproject.toml. From PyPI that is the CUDA build for Linux (it runs on
    # CPU too); a machine whose pip index or --find-links wheelhouse carries the CPU build gets that.
    .venv/bin/python -m pip install --quiet -e .
    cp pyproject.toml "$stamp"
fi
