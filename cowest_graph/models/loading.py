"""`load_weak_model`: one entry point for every weak backend (`hf`, `llama.cpp`)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any, Literal, get_args

from cowest_graph.models.weak import WeakModel

WeakBackend = Literal["hf", "llama.cpp"]
BACKENDS: tuple[str, ...] = get_args(WeakBackend)
BACKEND_ENV = "COWEST_WEAK_BACKEND"


def default_backend() -> WeakBackend:
    """`$COWEST_WEAK_BACKEND` if set; else `hf` where CUDA is available (batched `generate` on an
    H200 drafts 16.5/s for 16 prompts and 70/s for 64: `benchmarks/gpu_drafts.py`); else
    `llama.cpp` where llama-cpp-python is installed (on a CPU it drafts 3.6-4.8x faster than
    transformers, and its greedy drafts matched transformers' on every one of 248 held-out
    questions: `benchmarks/backends.py`); else `hf`.

    Example:
        >>> default_backend() in BACKENDS
        True
    """
    value = os.environ.get(BACKEND_ENV)
    if value:
        if value not in BACKENDS:
            raise ValueError(
                f"{BACKEND_ENV}={value!r}: the weak backend must be one of {', '.join(BACKENDS)}"
            )
        return value  # type: ignore[return-value]
    if _cuda_available():
        return "hf"
    return "llama.cpp" if importlib.util.find_spec("llama_cpp") is not None else "hf"


def _cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def load_weak_model(
    model: str | Path | None = None,
    *,
    backend: WeakBackend | None = None,
    adapter: str | Path | None = None,
    **settings: Any,
) -> WeakModel:
    """Load the weak model: the embedded SmolLM2 (`model=None`) or a local model directory.

    `backend="hf"` runs transformers (and is what training uses); `backend="llama.cpp"` runs
    llama.cpp in-process (`precision=` picks the GGUF type of the embedded model); None: see
    `default_backend`. Sampling
    fields (`temperature`, `top_p`, `max_new_tokens`, `seed`, `max_input_tokens`) pass through.
    Each call loads its own copy of the weights.

    Example:
        >>> weak = load_weak_model(max_new_tokens=32, temperature=0.7, seed=0)
        >>> fast = load_weak_model(backend="llama.cpp", max_new_tokens=32)  # doctest: +SKIP
        >>> weak.invoke("What is the capital of France?").content  # doctest: +SKIP
        'The capital of France is Paris.'
    """
    backend = backend or default_backend()
    if backend == "hf":
        from cowest_graph.models.hf import load_hf_weak_model

        return load_hf_weak_model(model, adapter=adapter, **settings)
    if backend == "llama.cpp":
        from cowest_graph.models.llamacpp import load_llamacpp_weak_model

        return load_llamacpp_weak_model(model, adapter=adapter, **settings)
    raise ValueError(f"unknown weak backend {backend!r}; choose one of {', '.join(BACKENDS)}")
