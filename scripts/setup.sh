#!/usr/bin/env bash
# Creates .venv and installs cloudbackup with its test tools; quick when nothing changed since the last run.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "cloudbackup needs Python 3.11 or newer; set PYTHON=/path/to/python3.11" >&2
    exit 1
fi

stamp=.venv/.installed
want=$(cat setup.cfg pyproject.toml | sha256sum | cut -d' ' -f1)
if [ -x .venv/bin/python ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    exit 0
fi

echo "==> setting up .venv (Python virtual environment with cloudbackup, Terraform 1.0.3 and the test tools)"
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
.venv/bin/python -m pip install --quiet -e '.[test]' 2>&1 | grep -v '^WARNING: Location' || true
.venv/bin/python -c 'import shim, provider, flask, tf, python_terraform' || {
    echo "installing cloudbackup into .venv failed; see pip's messages above" >&2
    exit 1
}
echo "$want" > "$stamp"
