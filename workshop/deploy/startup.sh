#!/bin/bash
# Start-up script of the workshop VM (Container-Optimized OS, cos-stable).
#
# Google runs it as root at every boot. It reads its settings from the VM's
# metadata (set by `workshop gcp deploy`), logs docker in to Artifact Registry,
# pulls the back-end image (by tag or by digest) with retries, opens the port in
# the host firewall and runs the container with a restart policy.
#
# Each setting can also come from the environment, which is how the test suite
# runs this very script against a local Docker engine and a loopback registry:
#   IMAGE, API_KEY, PORT, CONTAINER_NAME,
#   CREDENTIALS_HOME (where docker's registry login is written; default /var/lib/workshop),
#   PULL_ATTEMPTS (default 5), PULL_RETRY_SECONDS (default 5: the wait after failure n is n times this)
set -euo pipefail

metadata() {
    # Bounded: a missing metadata server must not hang the boot.
    curl -sf --connect-timeout 5 --max-time 10 -H "Metadata-Flavor: Google" \
        "http://metadata.google.internal/computeMetadata/v1/instance/attributes/$1" || true
}

# The registry host of an image reference, read the way docker reads it: the first
# component is a host only if it has a dot or a colon, or is localhost; otherwise
# the image is on Docker Hub (prints nothing). Works for name:tag, name@sha256:...
# and name:tag@sha256:...
registry_host() {
    case "$1" in */*) ;; *) return 0 ;; esac
    local first="${1%%/*}"
    case "$first" in *.* | *:* | localhost) echo "$first" ;; esac
}

IMAGE="${IMAGE:-$(metadata image)}"
API_KEY="${API_KEY:-$(metadata api-key)}"
PORT="${PORT:-$(metadata port)}"
PORT="${PORT:-8000}"
CONTAINER_NAME="${CONTAINER_NAME:-workshop-backend}"
PULL_ATTEMPTS="${PULL_ATTEMPTS:-5}"
PULL_RETRY_SECONDS="${PULL_RETRY_SECONDS:-5}"

if [ -z "$IMAGE" ]; then
    echo "workshop: no image in the metadata (key 'image'); nothing to run" >&2
    exit 1
fi
case "$PORT" in
    '' | *[!0-9]*)
        echo "workshop: the port in the metadata (key 'port') is '$PORT', not a number; nothing started" >&2
        exit 1
        ;;
esac
echo "workshop: starting $IMAGE on port $PORT"

registry="$(registry_host "$IMAGE")"
if [ -n "$registry" ]; then
    # On COS the root home is read-only: docker's credentials go to a writable place,
    # and both docker and the helper must read the same file ($HOME/.docker/config.json).
    export HOME="${CREDENTIALS_HOME:-/var/lib/workshop}"
    unset DOCKER_CONFIG
    mkdir -p "$HOME"
    if ! docker-credential-gcr configure-docker --registries="$registry"; then
        echo "workshop: could not set up docker's login to $registry" \
            "(docker-credential-gcr configure-docker failed, see above)" >&2
        exit 1
    fi
    echo "workshop: docker logs in to $registry with the VM's service account"
else
    echo "workshop: $IMAGE names no registry host: pulled from Docker Hub without login"
fi

if command -v iptables >/dev/null 2>&1; then
    # COS drops incoming traffic except SSH; the VPC firewall rule still decides who gets here.
    # Checked first, so that a reboot does not stack a second copy of the rule.
    if iptables -w -C INPUT -p tcp --dport "$PORT" -j ACCEPT 2>/dev/null; then
        echo "workshop: the host firewall already accepts tcp/$PORT"
    else
        iptables -w -A INPUT -p tcp --dport "$PORT" -j ACCEPT
        echo "workshop: the host firewall now accepts tcp/$PORT"
    fi
else
    echo "workshop: no iptables on this host; its firewall is left as it is" >&2
fi

# Pull first, with retries: the network (or the registry) can take a moment at boot.
attempt=1
until docker pull "$IMAGE"; do
    if [ "$attempt" -ge "$PULL_ATTEMPTS" ]; then
        echo "workshop: could not pull $IMAGE after $PULL_ATTEMPTS attempts; nothing started." \
            "Check that the image exists and that the VM's service account may read it" \
            "(roles/artifactregistry.reader on the repository)." >&2
        exit 1
    fi
    wait_seconds=$((attempt * PULL_RETRY_SECONDS))
    echo "workshop: pull failed (attempt $attempt of $PULL_ATTEMPTS), retrying in ${wait_seconds}s" >&2
    sleep "$wait_seconds"
    attempt=$((attempt + 1))
done

# At every boot: replace the old container, if any, with a fresh one from the image.
docker rm -f "$CONTAINER_NAME" >/dev/null 2>&1 || true
docker run -d --name "$CONTAINER_NAME" --restart=always \
    -p "$PORT:8000" \
    -e WORKSHOP_API_KEY="$API_KEY" \
    "$IMAGE"
echo "workshop: container $CONTAINER_NAME is running"
