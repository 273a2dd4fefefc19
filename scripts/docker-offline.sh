#!/usr/bin/env bash
# A Docker engine and a Python base image on a machine that cannot pull images.
#
# For CI and for air-gapped classrooms: no image is pulled from any registry.
#   1. install Debian's docker.io and docker-compose if they are missing;
#   2. start dockerd in the background if no engine answers;
#   3. build a local base image (a minimal Debian with python3, venv and pip,
#      made with debootstrap from the machine's own apt mirror, then
#      `docker import`), with this machine's CA bundle inside so that pip and
#      requests in a build can reach the package index through the same
#      network as the host.
#
# The last line printed is the base image's name, for
#   docker build --build-arg BASE_IMAGE=<name> ...
#
# Environment: BASE_IMAGE_NAME (default workshop-base/python:bookworm),
# DEBIAN_SUITE (default bookworm), REBUILD_BASE=1 to rebuild the image.
set -euo pipefail

image="${BASE_IMAGE_NAME:-workshop-base/python:bookworm}"
suite="${DEBIAN_SUITE:-bookworm}"
ca_bundle=/etc/ssl/certs/ca-certificates.crt

log() { echo "==> $*" >&2; }

sudo=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { log "This script needs root or sudo."; exit 1; }
    sudo="sudo"
fi

# 1. Packages -----------------------------------------------------------------
missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
if [ ${#missing[@]} -gt 0 ]; then
    log "Installing ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# 2. Engine ---------------------------------------------------------------------
if ! $sudo docker info >/dev/null 2>&1; then
    log "Starting dockerd (log: /var/log/dockerd.log)"
    $sudo sh -c 'nohup dockerd >/var/log/dockerd.log 2>&1 &'
    for _ in $(seq 1 60); do
        $sudo docker info >/dev/null 2>&1 && break
        sleep 1
    done
    $sudo docker info >/dev/null 2>&1 || { log "dockerd did not start:"; tail -20 /var/log/dockerd.log >&2; exit 1; }
fi
log "Docker engine $($sudo docker version --format '{{.Server.Version}}') is running"

# 3. Base image -----------------------------------------------------------------
if [ -z "${REBUILD_BASE:-}" ] && $sudo docker image inspect "$image" >/dev/null 2>&1; then
    log "Base image $image already exists"
    echo "$image"
    exit 0
fi

# The mirror this machine's apt already uses (deb822 .sources files or a classic sources.list).
mirror=$(grep -rhoE '^(URIs:|deb) +https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
    | head -n 1 | awk '{print $2}' || true)
mirror="${mirror:-http://deb.debian.org/debian}"
mirror="${mirror%/}"
log "Building base image $image from $mirror ($suite)"

rootfs=$(mktemp -d /tmp/workshop-rootfs.XXXXXX)
trap '$sudo rm -rf "$rootfs"' EXIT
$sudo debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
    "$suite" "$rootfs" "$mirror" >/dev/null

# apt inside builds uses the same mirror as the host.
$sudo tee "$rootfs/etc/apt/sources.list" >/dev/null <<EOF
deb $mirror $suite main
deb $mirror $suite-updates main
deb ${mirror%/debian}/debian-security $suite-security main
EOF
# The host's CA bundle, so TLS through this network's proxy (if any) is trusted inside.
$sudo cp "$ca_bundle" "$rootfs$ca_bundle"
$sudo tee "$rootfs/etc/pip.conf" >/dev/null <<EOF
[global]
cert = $ca_bundle
EOF
$sudo rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*

$sudo tar -C "$rootfs" -c . | $sudo docker import \
    --change "ENV LANG=C.UTF-8" \
    --change "ENV PIP_CERT=$ca_bundle" \
    --change "ENV REQUESTS_CA_BUNDLE=$ca_bundle" \
    --change "ENV SSL_CERT_FILE=$ca_bundle" \
    --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    --change 'CMD ["python3"]' \
    - "$image" >/dev/null
log "Base image $image: $($sudo docker image inspect "$image" --format '{{.Size}}' | awk '{printf "%.0f MB", $1/1e6}')"
echo "$image"
