#!/usr/bin/env bash
# Install Debian's Chromium for the end-to-end browser tests, if it is not there yet.
# Playwright drives this system browser; it never downloads a browser of its own.
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
        echo "Chromium is missing and this user cannot install it (no root, no sudo): browser tests will be skipped." >&2
        exit 0
    fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "Chromium is missing and this is not a Debian/Ubuntu system: browser tests will be skipped." >&2
    exit 0
fi
echo "==> Installing Chromium (Debian package) for the browser tests"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium fonts-dejavu-core >/dev/null
chromium --version
