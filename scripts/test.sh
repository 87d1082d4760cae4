#!/usr/bin/env bash
# README command 2: set up (idempotent) and run the whole test suite offline.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --with-strong
export HF_HUB_OFFLINE=1
# A throwaway PostgreSQL server on loopback for the trace-store tests (when it can be installed).
if [ -z "${COWEST_TEST_POSTGRES_URL:-}" ]; then
  if url=$(bash scripts/postgres.sh start); then
    export COWEST_TEST_POSTGRES_URL="$url"
    trap 'bash scripts/postgres.sh stop' EXIT
  elif [ -n "${CI:-}" ]; then
    echo "CI: could not start PostgreSQL" >&2
    exit 1
  fi
fi
# A headless Chromium renders the improvement report in a test (Debian's chromium-headless-shell).
if [ -z "${COWEST_TEST_CHROMIUM:-}" ]; then
  if chromium=$(bash scripts/chromium.sh); then
    export COWEST_TEST_CHROMIUM="$chromium"
  elif [ -n "${CI:-}" ]; then
    echo "CI: no headless Chromium" >&2
    exit 1
  fi
fi
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
# Every docstring example in the package and the benchmarks runs (those that need a model or a store say +SKIP).
.venv/bin/python -m pytest -q -p no:cacheprovider --doctest-modules cowest_graph benchmarks
.venv/bin/python -m pytest -q "$@"
