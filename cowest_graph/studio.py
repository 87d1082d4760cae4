"""The graph that `langgraph dev` / LangGraph Studio serves (see `langgraph.json`).

Settings come from the environment, so one `langgraph.json` serves any set-up:

| variable | default | meaning |
| --- | --- | --- |
| `COWEST_WEAK_MODEL` | embedded SmolLM2 | local HF model directory for the weak model |
| `COWEST_WEAK_ADAPTER` | none | LoRA adapter dir for the weak model (`adapters/current`: followed) |
| `COWEST_WEAK_BACKEND` | `hf` on CUDA, else `llama.cpp` if installed | weak inference backend |
| `COWEST_STRONG` | `local` | strong model spec (`local`, `openai:MODEL`, `http(s)://.../v1`) |
| `COWEST_NUM_DRAFTS` | 2 | drafts per round |
| `COWEST_MAX_NEW_TOKENS` | 64 | tokens per local generation |
| `COWEST_STORE` | none | trace store URL: every served run is traced there |

Models load once, in a worker thread, so the server's event loop is never blocked. No
checkpointer is compiled in: the server brings its own.
"""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from langchain_core.runnables import RunnableConfig

_MODELS: dict[str, Any] = {}
_LOCK = asyncio.Lock()
_PRELOAD: Future[tuple[Any, Any]] | None = None


def _load_models() -> tuple[Any, Any]:
    from cowest_graph.models import load_weak_model
    from cowest_graph.models.strong import resolve_chat_model

    tokens = int(os.environ.get("COWEST_MAX_NEW_TOKENS", "64"))
    weak = load_weak_model(
        os.environ.get("COWEST_WEAK_MODEL") or None,
        adapter=os.environ.get("COWEST_WEAK_ADAPTER") or None,
        max_new_tokens=tokens,
        temperature=0.8,
    )
    spec = os.environ.get("COWEST_STRONG", "local")
    strong = resolve_chat_model(spec, local_max_new_tokens=tokens)
    return weak, strong


def preload() -> Future[tuple[Any, Any]]:
    """Start loading the models in a worker thread (once); the server imports this module at
    start-up, so the first request does not wait for them."""
    global _PRELOAD
    if _PRELOAD is None:
        _PRELOAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cowest-load").submit(_load_models)
    return _PRELOAD


async def make_graph(config: RunnableConfig | None = None) -> Any:
    """Graph factory for the LangGraph server: the compiled cowest graph, traced when
    `COWEST_STORE` is set.

    Example (langgraph.json):
        {"graphs": {"cowest": "./cowest_graph/studio.py:make_graph"}}
    """
    from cowest_graph.graph import create_cowest_graph
    from cowest_graph.tracing import CowestTracer

    async with _LOCK:
        if "models" not in _MODELS:
            _MODELS["models"] = await asyncio.wrap_future(preload())
        if "tracer" not in _MODELS and os.environ.get("COWEST_STORE"):
            _MODELS["tracer"] = await asyncio.to_thread(CowestTracer, os.environ["COWEST_STORE"])
        if "graph" not in _MODELS:  # built once: the server asks for the graph on every request
            weak, strong = _MODELS["models"]
            graph = create_cowest_graph(
                weak, strong, critic=strong, num_drafts=int(os.environ.get("COWEST_NUM_DRAFTS", "2"))
            ).compile(name="cowest")
            tracer = _MODELS.get("tracer")
            _MODELS["graph"] = graph.with_config(callbacks=[tracer]) if tracer is not None else graph
    return _MODELS["graph"]


if os.environ.get("COWEST_PRELOAD", "1") == "1" and __name__ != "__main__":
    preload()
