#!/usr/bin/env bash
# Install the Debian programs the tests drive for real, where they are missing:
#   chromium          the browser of the end-to-end tests (Playwright drives it; it never downloads its own)
#   nginx             the reverse proxy and load balancer in front of the servers under test
#   docker-registry   a local registry the VM start-up script logs in to and pulls from
#   ip, iptables      the fake VM of that test: a network namespace with COS's host firewall in it
#   curl              what the start-up script reads the metadata with
#   gpg               signs the stand-in of Google's apt repository in the devcontainer test
# On a machine where they cannot be installed (no root, not Debian), the tests that need them are skipped,
# except in CI (CI set), where they fail: a CI run reports 0 skipped tests (tests/ci_skips.py).
set -euo pipefail

# command -> Debian package
declare -A packages=(
    [chromium]=chromium
    [nginx]=nginx
    [docker-registry]=docker-registry
    [ip]=iproute2
    [iptables]=iptables
    [curl]=curl
    [gpg]=gnupg
)

missing=()
for command in "${!packages[@]}"; do
    command -v "$command" >/dev/null 2>&1 || [ -x "/usr/sbin/$command" ] || [ -x "/usr/bin/$command" ] \
        || missing+=("${packages[$command]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
        echo "Missing ${missing[*]} and this user cannot install them (no root, no sudo): their tests will be skipped." >&2
        [ -z "${CI:-}" ] || exit 1  # in CI a missing tool is a failure, not a skip
        exit 0
    fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "Missing ${missing[*]} and this is not a Debian/Ubuntu system: their tests will be skipped." >&2
    [ -z "${CI:-}" ] || exit 1
    exit 0
fi
echo "==> Installing ${missing[*]} (Debian packages) for the tests"
# The tests start their own nginx and registry on free ports: do not let the packages start theirs.
policy=/usr/sbin/policy-rc.d
created_policy=""
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null && $sudo chmod +x "$policy" && created_policy=1
fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" fonts-dejavu-core >/dev/null
[ -n "$created_policy" ] && $sudo rm -f "$policy"
chromium --version
