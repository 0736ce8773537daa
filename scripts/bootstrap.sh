#!/usr/bin/env bash
# Installs everything the project needs on a fresh machine; cheap when already done.
# Python packages go into .venv (re-installed only when pyproject.toml changes).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3

stamp="$VENV/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
    echo "==> setting up Python environment in $VENV"
    [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade "pip>=25.1"
    "$VENV/bin/python" -m pip install -q -e ".[matchserver,lobby,operator]" --group test --group lint
    rm -f "$VENV"/.installed-*
    touch "$stamp"
fi
