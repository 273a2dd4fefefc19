#!/usr/bin/env bash
# Create .venv (if needed) and install the workshop package with pinned versions.
#
#   scripts/setup.sh          # back-end and front-end (extra "all")
#   scripts/setup.sh dev      # plus everything the tests need
#
# Then, with network, it exports the public default model (yolo26n) to ONNX into weights/exports,
# where the back-end image finds it: that image has no PyTorch to export it (backend/Dockerfile).
#
# PyTorch comes from PyPI by default. To get the smaller CPU-only build instead,
# set TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu before running this.
set -euo pipefail

cd "$(dirname "$0")/.."
extras="${1:-all}"
python="${PYTHON:-python3}"
venv="${VENV:-.venv}"

"$python" - <<'PY'
import sys
if sys.version_info < (3, 10):
    sys.exit(f"Python 3.10 or newer is needed; this is {sys.version.split()[0]}.")
PY

if [ ! -x "$venv/bin/python" ]; then
    echo "==> Creating virtual environment $venv"
    "$python" -m venv "$venv"
fi

pip_args=(--disable-pip-version-check -q)
if [ -n "${TORCH_INDEX_URL:-}" ]; then
    pip_args+=(--extra-index-url "$TORCH_INDEX_URL")
fi

# PyPI's PyTorch for Linux carries CUDA's libraries: a first installation takes about 8 GB (measured). The CPU index
# leaves out CUDA (3.2 GB), Triton (0.9 GB) and most of PyTorch's 1.2 GB: 3 GB is asked for then.
if ! compgen -G "$venv/lib/python3*/site-packages/torch" > /dev/null; then
    scripts/disk-space.sh "$([ -n "${TORCH_INDEX_URL:-}" ] && echo 3 || echo 9)" "$venv" "installing PyTorch into $venv"
fi

target=".[$extras]"
echo "==> Installing $target (pinned by requirements/constraints.txt)"
"$venv/bin/python" -m pip install "${pip_args[@]}" --upgrade pip
"$venv/bin/python" -m pip install "${pip_args[@]}" -c requirements/constraints.txt -e "$target"
echo "==> Exporting yolo26n for the back-end image into weights/exports (skipped offline)"
WORKSHOP_WEIGHTS_DIR=weights "$venv/bin/workshop" export yolo26n --engines onnx --allow-missing
echo "==> Ready: $("$venv/bin/workshop" --version)"
