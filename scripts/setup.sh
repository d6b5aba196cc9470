#!/usr/bin/env bash
# Create a virtual environment with vaetools and its test tools installed (editable).
set -euo pipefail
venv="${1:-.venv}"
python="${PYTHON:-python3}"
step() { echo "setup: $*"; }
if [ ! -x "$venv/bin/python" ]; then
    step "creating the virtual environment $venv"
    "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip install --quiet)
if ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
    step "installing PyTorch (the largest download: a minute or two)"
    # A CPU build keeps the install small; where it is not offered, pip picks the default build.
    "${pip[@]}" "torch==2.13.0" 2>/dev/null || "${pip[@]}" torch
fi
step "installing vaetools and its dependencies (scikit-learn, umap-learn, faiss, pandas, ...)"
"${pip[@]}" -e ".[test]"
step "done: $venv is ready"
