#!/usr/bin/env bash
# Create .venv and install Rolecall into it: the CPU torch pin first, then the project (dev extra with --dev).
set -euo pipefail
cd "$(dirname "$0")/.."
extra=""
[ "${1:-}" = "--dev" ] && extra="[dev]"
python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
stamp=".venv/.rolecall-installed${extra}"
wanted="$(cat pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then
  exit 0
fi
echo "setting up .venv (first run takes a few minutes)..." >&2
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
# torch first, pinned: these machines hold a CPU wheel of exactly this version; anything else pulls CUDA.
# Elsewhere, TORCH_INDEX_URL names a CPU wheel index (as the Dockerfile's build argument does).
.venv/bin/python -m pip install --quiet --disable-pip-version-check "torch==2.13.0" \
  ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".${extra}"
echo "$wanted" > "$stamp"
