#!/bin/bash
# Start-up script of the workshop VM (Container-Optimized OS, cos-stable).
#
# Google runs it as root at every boot. It reads its settings from the VM's
# metadata (set by `workshop gcp deploy`), logs docker in to Artifact Registry,
# pulls the back-end image and runs it with a restart policy.
#
# Each setting can also come from the environment, which is how the test suite
# runs this very script against a local Docker engine:
#   IMAGE, API_KEY, PORT, CONTAINER_NAME,
#   SKIP_REGISTRY=1 (the image is already local: no login, no pull), SKIP_HOST_FIREWALL=1
set -euo pipefail

metadata() {
    curl -sf -H "Metadata-Flavor: Google" \
        "http://metadata.google.internal/computeMetadata/v1/instance/attributes/$1" || true
}

IMAGE="${IMAGE:-$(metadata image)}"
API_KEY="${API_KEY:-$(metadata api-key)}"
PORT="${PORT:-$(metadata port)}"
PORT="${PORT:-8000}"
CONTAINER_NAME="${CONTAINER_NAME:-workshop-backend}"

if [ -z "$IMAGE" ]; then
    echo "workshop: no image in the metadata (key 'image'); nothing to run" >&2
    exit 1
fi
echo "workshop: starting $IMAGE on port $PORT"

if [ -z "${SKIP_REGISTRY:-}" ]; then
    # On COS the root home is read-only: docker's credentials go to a writable place.
    export HOME=/var/lib/workshop
    mkdir -p "$HOME"
    docker-credential-gcr configure-docker --registries="${IMAGE%%/*}"
fi

if [ -z "${SKIP_HOST_FIREWALL:-}" ] && command -v iptables >/dev/null 2>&1; then
    # COS drops incoming traffic except SSH; the VPC firewall rule still decides who gets here.
    iptables -w -C INPUT -p tcp --dport "$PORT" -j ACCEPT 2>/dev/null \
        || iptables -w -A INPUT -p tcp --dport "$PORT" -j ACCEPT
fi

if [ -z "${SKIP_REGISTRY:-}" ]; then
    # Pull first, with retries: the network can take a moment at boot.
    for attempt in 1 2 3 4 5; do
        docker pull "$IMAGE" && break
        echo "workshop: pull failed (attempt $attempt), retrying" >&2
        sleep $((attempt * 5))
    done
fi

# At every boot: replace the old container, if any, with a fresh one from the image.
docker rm -f "$CONTAINER_NAME" >/dev/null 2>&1 || true
docker run -d --name "$CONTAINER_NAME" --restart=always \
    -p "$PORT:8000" \
    -e WORKSHOP_API_KEY="$API_KEY" \
    "$IMAGE"
echo "workshop: container $CONTAINER_NAME is running"
