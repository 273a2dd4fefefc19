#!/usr/bin/env bash
# A Docker engine and a Python base image on a machine that cannot pull images.
#
# For CI and for air-gapped classrooms: no image is pulled from any registry.
#   1. install Debian's docker.io and docker-compose (Compose v1) if they are missing;
#   2. install the Compose v2 plugin (`docker compose`) if it is missing: Debian
#      bookworm has only v1, so the plugin comes from Debian trixie's docker-compose
#      package (a static Go binary that needs only libc6 >= 2.34), downloaded with
#      apt from the machine's own mirror and unpacked where Docker's CLI looks for
#      plugins. v1 stays installed. Where it cannot be had, `docker-compose` (v1)
#      is what the project's code falls back to;
#   3. start dockerd in the background if no engine answers;
#   4. build a local base image (a minimal Debian with python3, venv and pip,
#      made with debootstrap from the machine's own apt mirror, then
#      `docker import`), with this machine's CA bundle inside so that pip and
#      requests in a build can reach the package index through the same
#      network as the host. It is trimmed as Debian's slim images are
#      (debian:bookworm-slim, the base of the official python:3.12-slim): no
#      documentation, manual pages nor translations, dpkg told to leave them out
#      of every later install, apt set up as in Debian's Docker images. The image
#      carries its recipe's version in a label: one of an older recipe is built
#      again;
#   5. give that image the name the Dockerfiles start FROM by default
#      (python:3.12-slim) when no image has it, or when that name is an earlier
#      build of this stand-in: a plain
#      `docker build -f backend/Dockerfile -t deploy-ml-workshop/backend .`, as the
#      notebooks type it, then builds here as it does in a codespace. It stands in for
#      the official image under its name (a Debian python3, not 3.12), as the
#      weights built from a YAML stand in for yolo26n.pt; a real image of that name
#      is never replaced.
#
# The last line printed is the base image's name, for
#   docker build --build-arg BASE_IMAGE=<name> ...
#
# Environment: BASE_IMAGE_NAME (default workshop-base/python:bookworm),
# DEBIAN_SUITE (default bookworm), REBUILD_BASE=1 to rebuild the image,
# COMPOSE_V2_SUITE (default trixie) where the Compose v2 package comes from.
set -euo pipefail

image="${BASE_IMAGE_NAME:-workshop-base/python:bookworm}"
# The base image's recipe (step 4), written in a label of the image. Raise it whenever the recipe changes:
# a machine holding an image of an earlier recipe then builds it again.
#   1: debootstrap's minbase with python3, venv, pip and the CA bundle (those images have no label);
#   2: trimmed as Debian's slim images are, apt set up as in Debian's Docker images.
recipe_label=org.deploy-ml-workshop.base-recipe
recipe=2
suite="${DEBIAN_SUITE:-bookworm}"
compose_suite="${COMPOSE_V2_SUITE:-trixie}"
ca_bundle=/etc/ssl/certs/ca-certificates.crt
repository="$(cd "$(dirname "$0")/.." && pwd)"
# Where Docker's CLI (20.10 and later) looks for its plugins.
cli_plugins=/usr/libexec/docker/cli-plugins

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

# The mirror this machine's apt already uses (deb822 .sources files or a classic sources.list).
mirror=$(grep -rhoE '^(URIs:|deb) +https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
    | head -n 1 | awk '{print $2}' || true)
mirror="${mirror:-http://deb.debian.org/debian}"
mirror="${mirror%/}"

# 2. Compose v2 -----------------------------------------------------------------
# apt in a private folder: the machine's own sources and package lists stay as they are.
install_compose_v2() {
    local work
    work=$(mktemp -d /tmp/workshop-compose.XXXXXX)
    mkdir -p "$work/lists/partial" "$work/cache/archives/partial"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $compose_suite main" > "$work/sources.list"
    local apt_options=(-o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/dev/null
                       -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o APT::Sandbox::User=root)
    if $sudo apt-get "${apt_options[@]}" -qq update >/dev/null 2>&1 \
        && (cd "$work" && $sudo apt-get "${apt_options[@]}" -qq download docker-compose >/dev/null 2>&1) \
        && dpkg-deb --fsys-tarfile "$work"/docker-compose_*.deb \
            | tar -xO ./usr/libexec/docker/cli-plugins/docker-compose | $sudo tee "$work/docker-compose" >/dev/null \
        && $sudo chmod 0755 "$work/docker-compose" && "$work/docker-compose" version >/dev/null 2>&1; then
        $sudo install -D -m 0755 "$work/docker-compose" "$cli_plugins/docker-compose"
        $sudo rm -rf "$work"
        return 0
    fi
    $sudo rm -rf "$work"
    return 1
}
if ! docker compose version >/dev/null 2>&1; then
    log "Installing the Compose v2 plugin from Debian $compose_suite's docker-compose package"
    if install_compose_v2; then
        log "$(docker compose version) in $cli_plugins"
    else
        log "Compose v2 could not be installed: docker-compose (v1) will be used instead"
    fi
fi

# 3. Engine ---------------------------------------------------------------------
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

image_id() { $sudo docker image inspect --format '{{.Id}}' "$1" 2>/dev/null || true; }
recipe_of() { $sudo docker image inspect --format "{{index .Config.Labels \"$recipe_label\"}}" "$1" 2>/dev/null || true; }

# 5. The Dockerfiles' default base name -----------------------------------------
# Defined here, run after step 4: each name a Dockerfile starts FROM by default (ARG BASE_IMAGE=...).
# The name follows this stand-in when no image has it, or when it names a build of this stand-in: one
# that carries the recipe's label, or the image step 4 has just replaced (the first recipe had no label).
# Any other image of that name is a real one, pulled or loaded by someone: it stays.
name_the_default_bases() {
    local replaced="$1" default current
    for default in $(sed -n 's/^ARG BASE_IMAGE=//p' "$repository"/backend/Dockerfile* "$repository"/frontend/Dockerfile* 2>/dev/null | sort -u); do
        current=$(image_id "$default")
        [ "$current" = "$(image_id "$image")" ] && continue
        if [ -z "$current" ] || [ "$current" = "$replaced" ] || [ -n "$(recipe_of "$default")" ]; then
            $sudo docker tag "$image" "$default"
            log "The Dockerfiles' default base $default is $image here (no registry to pull it from)"
        else
            log "$default is an image of its own here, not this stand-in: it stays as it is"
        fi
    done
}

# 4. Base image -----------------------------------------------------------------
replaced=$(image_id "$image")
if [ -n "$replaced" ] && [ -z "${REBUILD_BASE:-}" ]; then
    built_by=$(recipe_of "$image")
    if [ "$built_by" = "$recipe" ]; then
        log "Base image $image already exists"
        name_the_default_bases "$replaced"
        echo "$image"
        exit 0
    fi
    log "Base image $image comes from an earlier recipe (${built_by:-1}; now $recipe): building it again"
fi

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

# Trimmed as Debian's slim images are (debuerreotype's "slimify", which makes debian:bookworm-slim):
# documentation, manual pages and translations stay out. dpkg skips them in every later install
# (an apt-get install in a Dockerfile), and those debootstrap already wrote are removed, except what the
# rules keep: the copyright notices, and the few locale files programs read whatever the language.
slim_excludes=('/usr/share/doc/*' '/usr/share/groff/*' '/usr/share/info/*' '/usr/share/linda/*'
               '/usr/share/lintian/overrides/*' '/usr/share/locale/*' '/usr/share/man/*')
slim_includes=('/usr/share/doc/*/copyright' '/usr/share/doc/kde/HTML/C/*' '/usr/share/gnome/help/*/C/*'
               '/usr/share/locale/all_languages' '/usr/share/locale/currency/*' '/usr/share/locale/l10n/*'
               '/usr/share/locale/languages' '/usr/share/locale/locale.alias' '/usr/share/omf/*/*-C.emf')
{
    echo '# The "slim" variant, as in Debian'"'"'s slim images: files a container does not need stay out.'
    printf 'path-exclude %s\n' "${slim_excludes[@]}"
    printf 'path-include %s\n' "${slim_includes[@]}"
} | $sudo tee "$rootfs/etc/dpkg/dpkg.cfg.d/docker" >/dev/null
kept=()
for pattern in "${slim_includes[@]}"; do kept+=(-o -path "$pattern"); done
for pattern in "${slim_excludes[@]}"; do
    folder=$(dirname "$pattern")
    [ -d "$rootfs$folder" ] || continue
    # Files first (what the rules keep stays), then the empty folders and dangling links that leaves,
    # again until there are none (a link may point into a folder that has just gone).
    $sudo chroot "$rootfs" find "$folder" -depth -mindepth 1 -not \( "${kept[@]:1}" \) -not -type d -not -type l -delete
    while [ -n "$($sudo chroot "$rootfs" find "$folder" -depth -mindepth 1 \( -empty -o -xtype l \) -delete -print)" ]; do :; done
done

# apt and dpkg as in Debian's Docker images: no cache of packages or lists kept in a layer, no translated
# lists, lists kept compressed, no fsync at each file, no service started by an install.
apt_clean='"rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true";'
printf '%s\n' "DPkg::Post-Invoke { $apt_clean };" "APT::Update::Post-Invoke { $apt_clean };" \
    'Dir::Cache::pkgcache "";' 'Dir::Cache::srcpkgcache "";' | $sudo tee "$rootfs/etc/apt/apt.conf.d/docker-clean" >/dev/null
echo 'Acquire::Languages "none";' | $sudo tee "$rootfs/etc/apt/apt.conf.d/docker-no-languages" >/dev/null
echo 'Acquire::GzipIndexes "true";' | $sudo tee "$rootfs/etc/apt/apt.conf.d/docker-gzip-indexes" >/dev/null
echo 'Apt::AutoRemove::SuggestsImportant "false";' | $sudo tee "$rootfs/etc/apt/apt.conf.d/docker-autoremove-suggests" >/dev/null
echo 'force-unsafe-io' | $sudo tee "$rootfs/etc/dpkg/dpkg.cfg.d/docker-apt-speedup" >/dev/null
printf '#!/bin/sh\n# Services are not started in an image build.\nexit 101\n' | $sudo tee "$rootfs/usr/sbin/policy-rc.d" >/dev/null
$sudo chmod 0755 "$rootfs/usr/sbin/policy-rc.d"

$sudo rm -rf "$rootfs"/var/cache/apt/* "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/apt/*.log

$sudo tar -C "$rootfs" -c . | $sudo docker import \
    --change "LABEL $recipe_label=$recipe" \
    --change "ENV LANG=C.UTF-8" \
    --change "ENV PIP_CERT=$ca_bundle" \
    --change "ENV REQUESTS_CA_BUNDLE=$ca_bundle" \
    --change "ENV SSL_CERT_FILE=$ca_bundle" \
    --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    --change 'CMD ["python3"]' \
    - "$image" >/dev/null
log "Base image $image: $($sudo docker image inspect "$image" --format '{{.Size}}' | awk '{printf "%.0f MB", $1/1e6}')"
name_the_default_bases "$replaced"
echo "$image"
