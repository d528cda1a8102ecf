#!/usr/bin/env bash
# Set-up from nothing, idempotent: a virtual environment in .venv with moviegpt installed (editable).
# Sourced by scripts/build_book.sh and scripts/test.sh; a second run only checks and returns.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.moviegpt-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  # pyproject.toml asks for torch>=2.5,<3, which CPU and CUDA builds both satisfy. Without a GPU, install the
  # CPU build first and explicitly, so nobody downloads several GB of CUDA wheels by accident.
  if ! command -v nvidia-smi >/dev/null 2>&1 && ! .venv/bin/python -c "import torch" 2>/dev/null; then
    .venv/bin/python -m pip install --quiet "torch==2.13.0" \
      || .venv/bin/python -m pip install --quiet torch --index-url https://download.pytorch.org/whl/cpu
  fi
  .venv/bin/python -m pip install --quiet -e ".[test,notebook]"
  touch "$stamp"
fi
