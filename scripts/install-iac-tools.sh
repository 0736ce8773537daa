#!/usr/bin/env bash
# Installs the offline infrastructure-as-code checkers used by tests/integration/terraform/
# and `make lint`:
#   - hclfmt (the HCL canonical formatter, hclwrite.Format, which `terraform fmt` builds on),
#     compiled from its pinned Go module;
#   - checkov (static security analysis), in its own virtualenv (it pins many dependencies
#     that must not leak into the project .venv);
#   - actionlint (the GitHub Actions workflow checker, over .github/workflows), compiled
#     from its pinned Go module; it runs shellcheck over every `run:` script when shellcheck
#     is on PATH, so Debian's shellcheck is installed too (as root, when missing).
# Everything lands in ~/.cache/tradearena/tools/<name>-<version>/ and is reused when present.
# Idempotent: a tool is (re)built only when its completion stamp is missing.
#
# Usage: scripts/install-iac-tools.sh [hclfmt|checkov|actionlint]...   (default: all)
set -euo pipefail
cd "$(dirname "$0")/.."

HCL_VERSION=v2.24.0
CHECKOV_VERSION=3.3.30
ACTIONLINT_VERSION=v1.7.12
TOOLS=${TRADEARENA_TOOLS:-$HOME/.cache/tradearena/tools}
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3

WANT=" ${*:-hclfmt checkov actionlint} "
wants() { [[ $WANT == *" $1 "* ]]; }

mkdir -p "$TOOLS"
# One installer at a time per machine (parallel `make test` runs share the cache).
exec 9>"$TOOLS/.iac-tools.lock"
flock 9
t0=$(date +%s)

# --- hclfmt -------------------------------------------------------------------------------
hcl_dir="$TOOLS/hclfmt-$HCL_VERSION"
if wants hclfmt && { [ ! -x "$hcl_dir/bin/hclfmt" ] || [ ! -f "$hcl_dir/.complete" ]; }; then
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
if wants checkov && { [ ! -x "$ck_dir/bin/checkov" ] || [ ! -f "$ck_dir/.complete" ]; }; then
    echo "==> installing checkov $CHECKOV_VERSION into $ck_dir"
    rm -rf "$ck_dir"
    "$PYTHON" -m venv "$ck_dir"
    "$ck_dir/bin/python" -m pip install -q --upgrade "pip>=25.1"
    nice "$ck_dir/bin/python" -m pip install -q "checkov==$CHECKOV_VERSION"
    "$ck_dir/bin/checkov" --version >/dev/null
    touch "$ck_dir/.complete"
fi
t2=$(date +%s)

# --- actionlint (and shellcheck) ------------------------------------------------------------
al_dir="$TOOLS/actionlint-$ACTIONLINT_VERSION"
if wants actionlint && { [ ! -x "$al_dir/bin/actionlint" ] || [ ! -f "$al_dir/.complete" ]; }; then
    command -v go >/dev/null || {
        echo "install-iac-tools: 'go' is required to build actionlint" >&2
        exit 1
    }
    echo "==> building actionlint $ACTIONLINT_VERSION into $al_dir"
    rm -rf "$al_dir"
    mkdir -p "$al_dir/bin"
    GOBIN="$al_dir/bin" GOFLAGS=-mod=mod CGO_ENABLED=0 nice go install -p 1 -trimpath \
        "github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION"
    "$al_dir/bin/actionlint" -version >/dev/null
    touch "$al_dir/.complete"
fi
if wants actionlint && ! command -v shellcheck >/dev/null; then
    if [ "$(id -u)" -eq 0 ]; then
        echo "==> installing shellcheck (Debian) for actionlint's run: checks"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends shellcheck \
            >/dev/null 2>&1 || {
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
                shellcheck >/dev/null
        }
    else
        echo "install-iac-tools: shellcheck missing (apt-get install shellcheck); actionlint" \
            "will not check run: scripts" >&2
    fi
fi
t3=$(date +%s)

done_list=()
wants hclfmt && done_list+=("hclfmt $HCL_VERSION ($((t1 - t0))s)")
wants checkov && done_list+=("checkov $CHECKOV_VERSION ($((t2 - t1))s)")
wants actionlint && done_list+=("actionlint $ACTIONLINT_VERSION ($((t3 - t2))s)")
printf -v summary '%s, ' "${done_list[@]}"
echo "iac-tools: ${summary%, } in $TOOLS"
