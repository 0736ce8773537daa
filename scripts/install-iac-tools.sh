#!/usr/bin/env bash
# Installs the offline infrastructure-as-code checkers used by tests/integration/terraform/:
#   - hclfmt (the HCL canonical formatter, hclwrite.Format, which `terraform fmt` builds on),
#     compiled from its pinned Go module;
#   - checkov (static security analysis), in its own virtualenv (it pins many dependencies
#     that must not leak into the project .venv).
# Everything lands in ~/.cache/tradearena/tools/<name>-<version>/ and is reused when present.
# Idempotent: a tool is (re)built only when its completion stamp is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

HCL_VERSION=v2.24.0
CHECKOV_VERSION=3.3.30
TOOLS=${TRADEARENA_TOOLS:-$HOME/.cache/tradearena/tools}
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3

mkdir -p "$TOOLS"
# One installer at a time per machine (parallel `make test` runs share the cache).
exec 9>"$TOOLS/.iac-tools.lock"
flock 9
t0=$(date +%s)

# --- hclfmt -------------------------------------------------------------------------------
hcl_dir="$TOOLS/hclfmt-$HCL_VERSION"
if [ ! -x "$hcl_dir/bin/hclfmt" ] || [ ! -f "$hcl_dir/.complete" ]; then
    command -v go >/dev/null || {
        echo "install-iac-tools: 'go' is required to build hclfmt" >&2
        exit 1
    }
    echo "==> building hclfmt $HCL_VERSION into $hcl_dir"
    rm -rf "$hcl_dir"
    mkdir -p "$hcl_dir/bin"
    GOBIN="$hcl_dir/bin" GOFLAGS=-mod=mod nice go install -p 1 \
        "github.com/hashicorp/hcl/v2/cmd/hclfmt@$HCL_VERSION"
    touch "$hcl_dir/.complete"
fi
t1=$(date +%s)

# --- checkov ------------------------------------------------------------------------------
ck_dir="$TOOLS/checkov-$CHECKOV_VERSION"
if [ ! -x "$ck_dir/bin/checkov" ] || [ ! -f "$ck_dir/.complete" ]; then
    echo "==> installing checkov $CHECKOV_VERSION into $ck_dir"
    rm -rf "$ck_dir"
    "$PYTHON" -m venv "$ck_dir"
    "$ck_dir/bin/python" -m pip install -q --upgrade "pip>=25.1"
    nice "$ck_dir/bin/python" -m pip install -q "checkov==$CHECKOV_VERSION"
    "$ck_dir/bin/checkov" --version >/dev/null
    touch "$ck_dir/.complete"
fi
t2=$(date +%s)

echo "iac-tools: hclfmt $HCL_VERSION ($((t1 - t0))s), checkov $CHECKOV_VERSION ($((t2 - t1))s) in $TOOLS"
