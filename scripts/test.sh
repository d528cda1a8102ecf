#!/usr/bin/env bash
# Run the tests: set up if needed (including Chromium for the browser check, where apt-get can install it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null \
    || echo "warning: could not install chromium; the browser test will be skipped" >&2
fi
.venv/bin/ruff check src benchmarks tests book/_ext         # lint (pyproject.toml: [tool.ruff])
.venv/bin/ruff format --check src benchmarks tests book/_ext  # the tree stays formatted: `ruff format` fixes it
.venv/bin/python -m pytest -q -rs "$@"
