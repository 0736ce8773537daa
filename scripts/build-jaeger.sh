#!/usr/bin/env bash
# Builds (or finds cached) Jaeger v2, the trace backend of the tracing tests, from the Go
# module pinned in hack/jaeger -- nothing prebuilt is downloaded. Jaeger v2 is an
# OpenTelemetry Collector distribution: OTLP receivers (4317 gRPC, 4318 HTTP), in-memory
# trace storage and the query API (/api/v3/traces, /api/traces); deploy/jaeger/config.yaml
# is the configuration the tests and `up` users run it with.
#
# Cache, keyed by the Jaeger v2 version:  ~/.cache/tradearena/jaeger/<v2-version>/bin/jaeger
# Idempotent: a second run only checks that the file is there. A cold build takes about
# 4 minutes on 2 cores (docs/benchmarks.md), module downloads included.
#
# Usage: scripts/build-jaeger.sh [--print-bin-dir]
# Env:   TRADEARENA_CACHE (default ~/.cache/tradearena); builds use -trimpath, CGO off.
set -euo pipefail
cd "$(dirname "$0")/.."
MOD_DIR=hack/jaeger
started=$(date +%s)

# The Go module's tag v1.M.P is Jaeger v2.(M-63).P (the project tags both on one commit).
MOD_VERSION=$(awk '$1 == "github.com/jaegertracing/jaeger" && $2 ~ /^v/ {print $2; exit}' "$MOD_DIR/go.mod")
[ -n "$MOD_VERSION" ] || { echo "build-jaeger: cannot read the Jaeger version from $MOD_DIR/go.mod" >&2; exit 1; }
minor=${MOD_VERSION#v1.}
patch=${minor#*.}
minor=${minor%%.*}
JAEGER_VERSION="v2.$((minor - 63)).$patch"

CACHE=${TRADEARENA_CACHE:-$HOME/.cache/tradearena}
BIN=$CACHE/jaeger/$JAEGER_VERSION/bin

if [ "${1:-}" = "--print-bin-dir" ]; then
    echo "$BIN"
    exit 0
fi

if [ -x "$BIN/jaeger" ]; then
    echo "==> jaeger cached: $JAEGER_VERSION ($MOD_VERSION) in $BIN"
    exit 0
fi

command -v go >/dev/null || { echo "build-jaeger: Go toolchain not found (need Go >= 1.26)" >&2; exit 1; }
echo "==> building jaeger $JAEGER_VERSION ($MOD_VERSION) from Go modules (about 4 minutes on 2 cores; cached afterwards)"
build_date=$(cd "$MOD_DIR" && go list -m -f '{{if .Time}}{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}{{end}}' github.com/jaegertracing/jaeger)
pkg=github.com/jaegertracing/jaeger/internal/version
ldflags="-s -w -buildid= -X $pkg.latestVersion=$JAEGER_VERSION -X $pkg.date=${build_date:-1970-01-01T00:00:00Z}"
out=$(mktemp -d "${TMPDIR:-/tmp}/build-jaeger.XXXXXX")
trap 'rm -rf "$out"' EXIT
(
    cd "$MOD_DIR"
    export GOFLAGS="-trimpath -buildvcs=false ${GOFLAGS:-}" CGO_ENABLED=0 GOTOOLCHAIN=local
    go build -ldflags "$ldflags" -o "$out/jaeger" github.com/jaegertracing/jaeger/cmd/jaeger
)
mkdir -p "$BIN"
mv "$out/jaeger" "$BIN/jaeger.tmp"
mv "$BIN/jaeger.tmp" "$BIN/jaeger"
echo "==> built jaeger $JAEGER_VERSION in $BIN ($(($(date +%s) - started)) s)"
