#!/usr/bin/env bash
# Runs every test: unit, API, driver (local and azure), process and terraform acceptance tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# The status page's test drives a real headless Chromium (Debian's package); install it when missing.
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "==> installing chromium for the status page's browser test"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >/dev/null 2>&1 \
        || echo "could not install chromium; tests/browser will be skipped" >&2
fi
.venv/bin/ruff check cloudbackup shim provider contract tests benchmarks scripts
exec .venv/bin/python -m pytest "$@"
