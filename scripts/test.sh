#!/usr/bin/env bash
# Set up everything the tests need, then run them. Extra arguments go to pytest.
set -euo pipefail

cd "$(dirname "$0")/.."
scripts/setup.sh dev
scripts/install-test-tools.sh
# A Docker engine and a local base image for the container tests, where one can be started.
if base_image=$(scripts/docker-offline.sh); then
    export WORKSHOP_DOCKER_BASE_IMAGE="$base_image"
    # At their peak the container tests hold the image with PyPI's PyTorch (7 GB) while it is built: about 12 GB.
    # Without that room CI stops here; elsewhere the sentence is a warning, for a run of the other tests.
    scripts/disk-space.sh 12 "$(docker info --format '{{.DockerRootDir}}')" "the container tests" || [ -z "${CI:-}" ]
    # Images built here take PyTorch from the package index this machine reaches (empty: PyPI).
    export WORKSHOP_TORCH_INDEX_URL="${WORKSHOP_TORCH_INDEX_URL-}"
elif [ -n "${CI:-}" ]; then
    echo "==> No Docker engine could be started: in CI the container tests must run, so the run stops here" >&2
    exit 1
else
    echo "==> No Docker engine could be started here: the container tests will be skipped" >&2
fi
venv="${VENV:-.venv}"

echo "==> Running tests"
# Two workers (pytest-xdist): the tests that share the Docker engine, the notebooks' kernels and the repository's
# working files run one after the other in one of them (conftest.py schedules them), the rest beside it.
exec "$venv/bin/python" -m pytest -n "${WORKSHOP_TEST_WORKERS:-2}" --dist loadscope "$@"
