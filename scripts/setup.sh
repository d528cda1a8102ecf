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
  # torch first, pinned: 2.13.0 is the CPU build; an unpinned torch would pull a multi-GB CUDA build
  .venv/bin/python -m pip install --quiet "torch==2.13.0"
  .venv/bin/python -m pip install --quiet -e ".[test]"
  touch "$stamp"
fi
