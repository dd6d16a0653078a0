#!/usr/bin/env bash
# The embedded demo from a fresh clone: sets up .venv, then runs `router demo` (no Redis needed).
# Extra arguments go to `router demo`, e.g.: bash scripts/demo.sh --contacts 300 --json out.json
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/router demo "$@"
