#!/usr/bin/env bash
# Installs everything the project needs on a fresh machine; cheap when already done.
# Python packages go into .venv (re-installed only when pyproject.toml changes).
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages: Redis and PostgreSQL servers (started by `up` and by the tests
# themselves, never as system services), Node.js's npm for the JS client tests,
# Chromium for the browser test (driven by playwright-core; no browser is downloaded),
# Prometheus (promtool checks and unit-tests the alert rules; the server scrapes `up` in
# the alerting tests).
need=()
command -v redis-server >/dev/null || need+=(redis-server)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need+=(postgresql)
command -v runuser >/dev/null || need+=(util-linux)
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v promtool >/dev/null || need+=(prometheus)
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "missing system packages: ${need[*]} (run as root, or: sudo apt-get install ${need[*]})" >&2
        exit 1
    fi
    echo "==> installing system packages: ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    # The packages start system-wide services; the project runs its own instances.
    for svc in redis-server postgresql prometheus prometheus-node-exporter; do
        service "$svc" stop >/dev/null 2>&1 || true
    done
fi

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

# Stock JavaScript Socket.IO packages for the client tests and the fan-out reference.
js_stamp="tests/js/node_modules/.installed-$(sha256sum tests/js/package-lock.json | cut -c1-16)"
if [ ! -f "$js_stamp" ]; then
    echo "==> installing JavaScript test clients (npm ci)"
    npm ci --prefix tests/js --no-audit --no-fund --loglevel=error
    touch "$js_stamp"
fi
