#!/usr/bin/env bash
# README command 1: set up (idempotent) and run the main job on the embedded default models.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --with-strong
export HF_HUB_OFFLINE=1
.venv/bin/cowest-graph demo "$@"
