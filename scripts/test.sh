#!/usr/bin/env bash
# Runs every test: unit, API, driver (local and azure), process and terraform acceptance tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/ruff check shim provider contract tests benchmarks scripts
exec .venv/bin/python -m pytest "$@"
