#!/usr/bin/env bash
# Sets everything up on a fresh clone and runs the demo: shim + provider + terraform apply.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/python scripts/demo.py
