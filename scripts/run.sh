#!/usr/bin/env bash
# Set up (first time only) and run the workshop:
#   back-end API   http://localhost:8000   (docs at /docs)
#   front-end UI   http://localhost:8501
# Stop both with Ctrl-C.
set -euo pipefail

cd "$(dirname "$0")/.."
scripts/setup.sh
venv="${VENV:-.venv}"
backend_port="${WORKSHOP_PORT:-8000}"

"$venv/bin/workshop" serve --port "$backend_port" &
backend=$!
"$venv/bin/workshop" ui --backend-url "http://localhost:$backend_port" &
frontend=$!
trap 'kill "$backend" "$frontend" 2>/dev/null || true; wait' INT TERM EXIT

echo "==> Back-end:  http://localhost:$backend_port/docs"
echo "==> Front-end: http://localhost:${WORKSHOP_UI_PORT:-8501}"
# Whichever stops first (Ctrl-C, or a crash) stops the other.
wait -n
