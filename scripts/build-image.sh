#!/usr/bin/env bash
# Builds the project's container image from its Dockerfile without a container engine,
# and unpacks it for tests that run it (tradearena/testing/image.py):
#   1. Debian bookworm base root filesystems made with mmdebstrap from this machine's
#      Debian mirror: a build base (python3, python3-venv) and a minimal runtime base
#      (python3, ca-certificates; Essential packages only: no apt, pip or compiler),
#      imported into a private buildah store (vfs driver, chroot isolation);
#   2. `buildah build` of the Dockerfile with those bases as BUILD_IMAGE/RUNTIME_IMAGE;
#   3. the image's root filesystem and OCI config ("config" object: User, Entrypoint,
#      Cmd, WorkingDir, Env, ...) exported to
#        ~/.cache/tradearena/image/<key>/rootfs/
#        ~/.cache/tradearena/image/<key>/config.json
#      where <key> hashes every input: the Dockerfile and .dockerignore, pyproject.toml,
#      README.md, the source trees the Dockerfile copies, the base package lists and
#      this script. An unchanged key is a cache hit (instant). A build is written to a
#      temporary directory and renamed into place, so a directory named by its key is
#      always complete. Older keys are pruned (see KEEP).
#
# Usage: scripts/build-image.sh [--print-dir]
#   --print-dir   print the image directory for the current inputs; build nothing
# Env:   TRADEARENA_CACHE (default ~/.cache/tradearena). Needs root (mmdebstrap, chroot);
#        installs mmdebstrap and buildah with apt-get when missing.
set -euo pipefail
shopt -s inherit_errexit  # a failure inside $(...) stops the script too
cd "$(dirname "$0")/.."
started=$(date +%s)

SUITE=bookworm
BUILD_PACKAGES=(python3 python3-venv ca-certificates)
RUNTIME_PACKAGES=(python3 ca-certificates)
# Documentation, manual pages and translations are left out of both bases.
DPKG_EXCLUDES=(/usr/share/doc/* /usr/share/man/* /usr/share/info/* /usr/share/locale/*)
# Pruning keeps the $KEEP most recently used images and any used within $KEEP_MINUTES
# (other checkouts on this machine share the cache; a test may be running one).
KEEP=3
KEEP_MINUTES=60
# The trees the Dockerfile copies, less what .dockerignore keeps out of the context.
SOURCE_TREES=(tradearena lobby matchserver operator)
SOURCE_FILES=(Dockerfile .dockerignore pyproject.toml README.md scripts/build-image.sh)

CACHE=${TRADEARENA_CACHE:-$HOME/.cache/tradearena}
IMAGES=$CACHE/image
STORE=$CACHE/buildah

source_listing() {
    find "${SOURCE_TREES[@]}" \
        -path tradearena/testing -prune -o \
        \( -name __pycache__ -o -name '*.egg-info' \) -prune -o \
        -type f ! -name '*.pyc' -print0 | LC_ALL=C sort -z
}

image_key() {
    {
        printf 'suite %s\nbuild %s\nruntime %s\nexclude %s\n' \
            "$SUITE" "${BUILD_PACKAGES[*]}" "${RUNTIME_PACKAGES[*]}" "${DPKG_EXCLUDES[*]}"
        sha256sum "${SOURCE_FILES[@]}"
        source_listing | xargs -0 sha256sum
    } | sha256sum | cut -c1-32
}

KEY=$(image_key)
DIR=$IMAGES/$KEY
TAG=${KEY:0:12}

if [ "${1:-}" = "--print-dir" ]; then
    echo "$DIR"
    exit 0
fi

hit() {
    [ -f "$DIR/config.json" ] && [ -d "$DIR/rootfs" ] || return 1
    touch "$DIR"  # most recently used: pruned last
    echo "==> image cached: tradearena:$TAG in $DIR"
}
hit && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "build-image: needs root (mmdebstrap, buildah's chroot isolation)" >&2
    exit 1
fi

need=()
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
command -v buildah >/dev/null || need+=(buildah)
[ -f /usr/share/keyrings/debian-archive-keyring.gpg ] || need+=(debian-archive-keyring)
if [ ${#need[@]} -gt 0 ]; then
    echo "==> installing system packages: ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

mkdir -p "$IMAGES" "$STORE"
# One build at a time; a second caller waits, then finds the first one's image.
exec 9>"$IMAGES/.lock"
flock 9
hit && exit 0

BUILDAH=(buildah --root "$STORE/root" --runroot "$STORE/run" --storage-driver vfs)
bh() { "${BUILDAH[@]}" "$@"; }
export BUILDAH_ISOLATION=chroot

# What an interrupted run left behind: temporary directories, working containers, images.
rm -rf "$IMAGES"/.tmp-*
bh rm --all >/dev/null
bh images --format '{{.Name}}:{{.Tag}}' | grep '^localhost/tradearena:' \
    | xargs -r "${BUILDAH[@]}" rmi -f >/dev/null || true

work=$(mktemp -d "$IMAGES/.tmp-$KEY.XXXXXX")
cleanup() {
    bh umount --all >/dev/null 2>&1 || true
    bh rm --all >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

# This machine's Debian mirror: the apt sources (one-line or deb822) that name the suite.
sources=()
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    if [ -f "$f" ] && grep -Eq "^[^#]*([[:space:]]|^)$SUITE([[:space:]]|$)" "$f"; then
        sources+=("$f")
    fi
done
if [ ${#sources[@]} -eq 0 ]; then
    echo "build-image: no apt source for $SUITE in /etc/apt/sources.list*" >&2
    exit 1
fi

# base <role> <package>...: a base image localhost/tradearena-base-<role>:<hash of its
# recipe (packages, options and this function's own text)>, made once and kept in the
# store while its recipe is unchanged.
base() {
    local role=$1
    shift
    local recipe hash ref
    recipe="$SUITE $* ${DPKG_EXCLUDES[*]} $(declare -f base)"
    hash=$(printf '%s' "$recipe" | sha256sum | cut -c1-12)
    ref=localhost/tradearena-base-$role:$hash
    # Bases of an older recipe go.
    bh images --format '{{.Name}}:{{.Tag}}' | grep -F "localhost/tradearena-base-$role:" \
        | grep -vxF "$ref" | xargs -r "${BUILDAH[@]}" rmi -f >/dev/null || true
    if bh inspect --type image "$ref" >/dev/null 2>&1; then
        echo "==> base $role cached ($ref)" >&2
        echo "$ref"
        return
    fi
    echo "==> mmdebstrap $SUITE ($role: $*)" >&2
    local t0 excludes=() p ctr mnt
    t0=$(date +%s)
    for p in "${DPKG_EXCLUDES[@]}"; do excludes+=(--dpkgopt="path-exclude=$p"); done
    mmdebstrap --quiet --variant=essential --include="$(
        IFS=,
        echo "$*"
    )" \
        "${excludes[@]}" --dpkgopt='path-include=/usr/share/doc/*/copyright' \
        "$SUITE" "$work/base-$role.tar" "${sources[@]}" >&2
    ctr=$(bh from --pull=never scratch)
    mnt=$(bh mount "$ctr")
    tar -C "$mnt" --numeric-owner -xpf "$work/base-$role.tar"
    # The host's name and resolver, copied in by mmdebstrap, are not the image's.
    rm -f "$mnt/etc/hostname" "$mnt/etc/resolv.conf"
    bh umount "$ctr" >/dev/null
    rm -f "$work/base-$role.tar"
    bh config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        --cmd /bin/sh "$ctr"
    bh commit --quiet --rm "$ctr" "$ref" >/dev/null
    echo "    ... $role base in $(($(date +%s) - t0)) s" >&2
    echo "$ref"
}
build_base=$(base build "${BUILD_PACKAGES[@]}")
runtime_base=$(base runtime "${RUNTIME_PACKAGES[@]}")

# The machine's pip settings, for PyPI access from the build stage's RUN: the index
# variables as they are, and a CA bundle (PIP_CERT or pip's config) as the secret pip-ca.
build_args=(--build-arg "BUILD_IMAGE=$build_base" --build-arg "RUNTIME_IMAGE=$runtime_base")
for v in PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_TRUSTED_HOST; do
    [ -n "${!v:-}" ] && build_args+=(--build-arg "$v=${!v}")
done
cert=${PIP_CERT:-}
if [ -z "$cert" ] && command -v pip3 >/dev/null; then
    cert=$(pip3 config get global.cert 2>/dev/null || true)
fi
if [ -z "$cert" ]; then
    for f in /etc/pip.conf "$HOME/.config/pip/pip.conf" "$HOME/.pip/pip.conf"; do
        [ -f "$f" ] || continue
        c=$(sed -n 's/^[[:space:]]*cert[[:space:]]*=[[:space:]]*//p' "$f" | tail -n1)
        [ -n "$c" ] && cert=$c
    done
fi
if [ -n "$cert" ] && [ -f "$cert" ]; then
    build_args+=(--secret "id=pip-ca,src=$cert" --build-arg PIP_CERT=/run/secrets/pip-ca)
fi

echo "==> buildah build tradearena:$TAG"
t0=$(date +%s)
ref=localhost/tradearena:$TAG
bh build --quiet --isolation chroot --pull=never --layers=false \
    "${build_args[@]}" \
    --file Dockerfile --tag "$ref" . >/dev/null
echo "    ... built in $(($(date +%s) - t0)) s"

# Export: the root filesystem as it is in the image, and its OCI config object.
ctr=$(bh from --pull=never "$ref")
mnt=$(bh mount "$ctr")
mkdir "$work/image"
cp -a "$mnt" "$work/image/rootfs"
bh umount "$ctr" >/dev/null
bh rm "$ctr" >/dev/null
bh inspect --type image "$ref" | python3 -c '
import json, sys
config = json.load(sys.stdin)["OCIv1"]["config"]
json.dump(config, sys.stdout, indent=2, sort_keys=True)
print()' >"$work/image/config.json"
rm -rf "$DIR"
mv "$work/image" "$DIR"

# Only the bases stay in the store (the export is the cache), and the newest $KEEP images.
bh rmi -f "$ref" >/dev/null
bh rmi --prune >/dev/null 2>&1 || true
n=0
while read -r _ d; do
    n=$((n + 1))
    if [ "$n" -gt "$KEEP" ] && [ -n "$(find "$d" -maxdepth 0 -mmin +"$KEEP_MINUTES")" ]; then
        rm -rf "$d"
    fi
done < <(find "$IMAGES" -mindepth 1 -maxdepth 1 -type d ! -name '.*' -printf '%T@ %p\n' | sort -rn)
echo "==> image built: tradearena:$TAG in $DIR ($(($(date +%s) - started)) s)"
