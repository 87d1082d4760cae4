"""`load_weak_model`: one entry point for every weak backend (`hf`, `llama.cpp`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, get_args

from cowest_graph.models.weak import WeakModel

WeakBackend = Literal["hf", "llama.cpp"]
BACKENDS: tuple[str, ...] = get_args(WeakBackend)
BACKEND_ENV = "COWEST_WEAK_BACKEND"
DEFAULT_BACKEND: WeakBackend = "hf"


def default_backend() -> WeakBackend:
    """`$COWEST_WEAK_BACKEND` if set, else `DEFAULT_BACKEND`."""
    value = os.environ.get(BACKEND_ENV) or DEFAULT_BACKEND
    if value not in BACKENDS:
        raise ValueError(f"{BACKEND_ENV}={value!r}: the weak backend must be one of {', '.join(BACKENDS)}")
    return value  # type: ignore[return-value]


def load_weak_model(
    model: str | Path | None = None,
    *,
    backend: WeakBackend | None = None,
    adapter: str | Path | None = None,
    **settings: Any,
) -> WeakModel:
    """Load the weak model: the embedded SmolLM2 (`model=None`) or a local model directory.

    `backend="hf"` runs transformers (and is what training uses); `backend="llama.cpp"` runs
    llama.cpp in-process (`precision=` picks the GGUF type of the embedded model). Sampling
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
