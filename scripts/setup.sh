#!/usr/bin/env bash
# Create a virtual environment with vaetools and its test tools installed (editable).
set -euo pipefail
venv="${1:-.venv}"
python="${PYTHON:-python3}"
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip install --quiet)
if ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
    # A CPU build keeps the install small; where it is not offered, pip picks the default build.
    "${pip[@]}" "torch==2.13.0" 2>/dev/null || "${pip[@]}" torch
fi
"${pip[@]}" -e ".[test]"
