#!/usr/bin/env bash
# The whole test suite from a fresh clone: set-up, a real redis-server on loopback, lint, types, tests.
# Extra arguments go to pytest, e.g.: bash scripts/test.sh -m "not slow and not model"
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
# Debian packages the suite drives for real: redis-server (+ redis-cli for the cluster test), chromium
# (browser tests, headless, via playwright-core with no browser download), docker-compose (1.29: parses
# and validates docker-compose.yml without a Docker engine), espeak-ng and sox (the voice tests synthesise speech)
missing=""
command -v redis-server >/dev/null 2>&1 || missing="$missing redis-server"
[ -x /usr/bin/chromium ] || missing="$missing chromium"
command -v docker-compose >/dev/null 2>&1 || missing="$missing docker-compose"
command -v espeak-ng >/dev/null 2>&1 || missing="$missing espeak-ng"
command -v sox >/dev/null 2>&1 || missing="$missing sox"
if [ -n "$missing" ]; then
  as_root apt-get update -qq
  # shellcheck disable=SC2086
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi

if [ -z "${ROUTER_TEST_REDIS_URL:-}" ]; then
  port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  redis_dir=$(mktemp -d)
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$redis_dir" --daemonize no \
    >"$redis_dir/log" 2>&1 &
  redis_pid=$!
  trap 'kill $redis_pid 2>/dev/null || true; rm -rf "$redis_dir"' EXIT
  for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
  # the suite runs as the documented least-privilege worker user (router/store/acl.py); the admin URL is
  # only for tests that must create users
  export ROUTER_TEST_REDIS_ADMIN_URL="redis://127.0.0.1:$port/0"
  test_pw=$(.venv/bin/python -c 'import secrets; print(secrets.token_hex(16))')
  .venv/bin/router acl worker --username router-test --password "$test_pw" | xargs redis-cli -p "$port" >/dev/null
  export ROUTER_TEST_REDIS_URL="redis://router-test:$test_pw@127.0.0.1:$port/0"
  echo "redis-server $(redis-server --version | awk '{print $3}') on port $port, tests run as ACL user router-test"
fi

.venv/bin/ruff check router tests scripts
.venv/bin/ruff format --check router tests scripts
.venv/bin/mypy
.venv/bin/pytest "$@"
