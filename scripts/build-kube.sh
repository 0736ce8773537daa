#!/usr/bin/env bash
# Builds (or finds cached) every binary of the local Kubernetes test control plane
# from the Go modules pinned in hack/kube -- nothing prebuilt is downloaded:
#   hack/kube/go.mod:       kube-apiserver, kube-controller-manager, kube-scheduler,
#                           kubectl (k8s.io/kubernetes), etcd (go.etcd.io/etcd/server/v3,
#                           the version that Kubernetes release requires)
#   hack/kube/tools/go.mod: kwok, kwokctl (sigs.k8s.io/kwok), helm (helm.sh/helm/v3)
#
# Cache, keyed by each component's own version:
#   ~/.cache/tradearena/kube/<k8s-version>/bin/   (Kubernetes binaries; symlinks to the rest)
#   ~/.cache/tradearena/{etcd,kwok,helm}/<version>/bin/
# Idempotent: a second run only checks that the files are there. What is missing is
# compiled with one `go build` per module, so shared packages compile once.
#
# Usage: scripts/build-kube.sh [--print-bin-dir]
# Env:   TRADEARENA_CACHE (default ~/.cache/tradearena); builds use -trimpath, CGO off.
set -euo pipefail
cd "$(dirname "$0")/.."
MOD_DIR=hack/kube
started=$(date +%s)

# Pinned versions, read straight from the module so there is one source of truth.
modver() { awk -v m="$2" '$1 == m && $2 ~ /^v/ {print $2; exit}' "$1/go.mod"; }
K8S_VERSION=$(modver "$MOD_DIR" k8s.io/kubernetes)
ETCD_VERSION=$(modver "$MOD_DIR" go.etcd.io/etcd/server/v3)
KWOK_VERSION=$(modver "$MOD_DIR/tools" sigs.k8s.io/kwok)
HELM_VERSION=$(modver "$MOD_DIR/tools" helm.sh/helm/v3)
for v in K8S_VERSION ETCD_VERSION KWOK_VERSION HELM_VERSION; do
    [ -n "${!v}" ] || { echo "build-kube: cannot read $v from $MOD_DIR/go.mod" >&2; exit 1; }
done

CACHE=${TRADEARENA_CACHE:-$HOME/.cache/tradearena}
KUBE_BIN=$CACHE/kube/$K8S_VERSION/bin
ETCD_BIN=$CACHE/etcd/$ETCD_VERSION/bin
KWOK_BIN=$CACHE/kwok/$KWOK_VERSION/bin
HELM_BIN=$CACHE/helm/$HELM_VERSION/bin

if [ "${1:-}" = "--print-bin-dir" ]; then
    echo "$KUBE_BIN"
    exit 0
fi

# binary name -> "module dir|package|destination dir"
declare -A PKG=(
    [kube-apiserver]="$MOD_DIR|k8s.io/kubernetes/cmd/kube-apiserver|$KUBE_BIN"
    [kube-controller-manager]="$MOD_DIR|k8s.io/kubernetes/cmd/kube-controller-manager|$KUBE_BIN"
    [kube-scheduler]="$MOD_DIR|k8s.io/kubernetes/cmd/kube-scheduler|$KUBE_BIN"
    [kubectl]="$MOD_DIR|k8s.io/kubernetes/cmd/kubectl|$KUBE_BIN"
    [etcd]="$MOD_DIR|go.etcd.io/etcd/server/v3|$ETCD_BIN"
    [kwok]="$MOD_DIR/tools|sigs.k8s.io/kwok/cmd/kwok|$KWOK_BIN"
    [kwokctl]="$MOD_DIR/tools|sigs.k8s.io/kwok/cmd/kwokctl|$KWOK_BIN"
    [helm]="$MOD_DIR/tools|helm.sh/helm/v3/cmd/helm|$HELM_BIN"
)
dest_of() { echo "${PKG[$1]##*|}"; }
pkg_of() { local x=${PKG[$1]#*|}; echo "${x%|*}"; }
ORDER=(kube-apiserver kube-controller-manager kube-scheduler kubectl etcd kwok kwokctl helm)

missing=()
for b in "${ORDER[@]}"; do
    [ -x "$(dest_of "$b")/$b" ] || missing+=("$b")
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "==> kube tools cached: Kubernetes $K8S_VERSION, etcd $ETCD_VERSION, kwok $KWOK_VERSION, helm $HELM_VERSION"
else
    command -v go >/dev/null || { echo "build-kube: Go toolchain not found (need Go >= 1.26)" >&2; exit 1; }
    echo "==> building ${missing[*]} from Go modules"
    echo "    Kubernetes $K8S_VERSION, etcd $ETCD_VERSION, kwok $KWOK_VERSION, helm $HELM_VERSION"
    echo "    (a fresh build takes tens of minutes on 2 cores; cached afterwards)"

    # Release date of the pinned Kubernetes version: a reproducible build date.
    build_date=$(cd "$MOD_DIR" && go list -m -f '{{if .Time}}{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}{{end}}' k8s.io/kubernetes)
    build_date=${build_date:-1970-01-01T00:00:00Z}
    kver=${K8S_VERSION#v}
    kmajor=${kver%%.*}
    kminor=${kver#*.}
    kminor=${kminor%%.*}

    ldflags="-s -w -buildid="
    # Same stamping as Kubernetes' hack/lib/version.sh, so `--version` reports the release.
    for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        ldflags+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=$kmajor -X $p.gitMinor=$kminor"
        ldflags+=" -X $p.gitTreeState=clean -X $p.buildDate=$build_date"
    done
    ldflags+=" -X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v}"
    ldflags+=" -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=$kver"
    ldflags+=" -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
    ldflags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
    for p in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
        ldflags+=" -X $p.k8sVersionMajor=$kmajor -X $p.k8sVersionMinor=$kminor"
    done

    out=$(mktemp -d "${TMPDIR:-/tmp}/build-kube.XXXXXX")
    trap 'rm -rf "$out"' EXIT
    build_started=$(date +%s)
    for mod in "$MOD_DIR" "$MOD_DIR/tools"; do
        pkgs=()
        for b in "${missing[@]}"; do
            [ "${PKG[$b]%%|*}" = "$mod" ] && pkgs+=("$(pkg_of "$b")")
        done
        [ ${#pkgs[@]} -gt 0 ] || continue
        echo "    go build ($mod): ${pkgs[*]}"
        (
            cd "$mod"
            export GOFLAGS="-trimpath -buildvcs=false ${GOFLAGS:-}" CGO_ENABLED=0 GOTOOLCHAIN=local
            go build -ldflags "$ldflags" -o "$out/" "${pkgs[@]}"
        )
        echo "    ... done after $(($(date +%s) - build_started)) s"
    done
    # etcd's main package is its module root go.etcd.io/etcd/server/v3, which go build
    # names "server" (the element before the major-version suffix).
    if [ -f "$out/server" ]; then mv "$out/server" "$out/etcd"; fi
    for b in "${missing[@]}"; do
        dest=$(dest_of "$b")
        [ -x "$out/$b" ] || { echo "build-kube: go build produced no $b" >&2; exit 1; }
        mkdir -p "$dest"
        mv "$out/$b" "$dest/$b.tmp"
        mv "$dest/$b.tmp" "$dest/$b"
    done
    echo "==> built ${missing[*]} in $(($(date +%s) - build_started)) s"
fi

# One directory with everything, for the test fixture and humans.
for b in etcd kwok kwokctl helm; do
    ln -sfn "$(dest_of "$b")/$b" "$KUBE_BIN/$b"
done
echo "==> kube tools in $KUBE_BIN ($(($(date +%s) - started)) s)"
