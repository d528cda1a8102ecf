#!/usr/bin/env bash
# Build the report: set up if needed, then train (or reuse) the book's profile and build the site.
# Profile: MOVIEGPT_PROFILE (default: smoke). Output: _build/html/index.html
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export TRANSFORMERS_VERBOSITY=${TRANSFORMERS_VERBOSITY:-error}
.venv/bin/jupyter-book build . -W -n --keep-going "$@"
echo "The report: $(pwd)/_build/html/index.html"
