"""cowest_graph: weak-strong model collaboration (CoWest, ACL 2025) for LangGraph.

A local weak model drafts, a strong chat model refines, a critique scores and selects; a tracer
records every run, and an offline trainer aligns the weak model with the strong model's
preferences (collaborative-feedback DPO).
"""

from cowest_graph.critique import (
    answer_match,
    choice_match,
    contains_match,
    exact_match,
    extract_label,
    label_match,
    parse_judge_output,
    token_f1,
)
from cowest_graph.graph import NODE_NAMES, CowestRunError, create_cowest_graph
from cowest_graph.models import WeakModel, load_weak_model
from cowest_graph.models.strong import local_strong, open_strong_model, resolve_chat_model
from cowest_graph.prompts import CowestPrompts, fence_draft
from cowest_graph.retry import DEFAULT_RETRY, transient_errors, with_call_policy
from cowest_graph.state import (
    AloneResult,
    Candidate,
    CowestContext,
    CowestInput,
    CowestOutput,
    CowestState,
    Draft,
)
from cowest_graph.tools import create_cowest_tool

__version__ = "0.1.0"

# The tracing, store, training and evaluation APIs load on first use, so `import cowest_graph`
# stays as fast as the graph API alone (TRL, PEFT and datasets are heavy imports).
_LAZY = {
    "CowestTracer": "cowest_graph.tracing",
    "open_trace_store": "cowest_graph.store",
    "TraceStore": "cowest_graph.store",
    "RunFilter": "cowest_graph.store",
    "build_preference_pairs": "cowest_graph.feedback",
    "PreferencePairs": "cowest_graph.feedback",
    "train_sft": "cowest_graph.train",
    "train_dpo": "cowest_graph.train",
    "SFTTrainConfig": "cowest_graph.train",
    "DPOTrainConfig": "cowest_graph.train",
    "LoraSettings": "cowest_graph.train",
    "load_questions": "cowest_graph.data",
    "collect": "cowest_graph.collect",
    "acollect": "cowest_graph.collect",
    "evaluate_graph": "cowest_graph.evaluate",
    "evaluate_model_alone": "cowest_graph.evaluate",
    "paired_difference": "cowest_graph.evaluate",
    "run_loop": "cowest_graph.loop",
    "LoopConfig": "cowest_graph.loop",
}


def __getattr__(name: str) -> object:
    """Load the lazily exported names (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'cowest_graph' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = [  # the lazy names, then the eager ones
    *_LAZY,
    "DEFAULT_RETRY",
    "NODE_NAMES",
    "AloneResult",
    "Candidate",
    "CowestContext",
    "CowestInput",
    "CowestOutput",
    "CowestPrompts",
    "CowestRunError",
    "CowestState",
    "Draft",
    "WeakModel",
    "answer_match",
    "choice_match",
    "contains_match",
    "create_cowest_graph",
    "create_cowest_tool",
    "exact_match",
    "extract_label",
    "fence_draft",
    "label_match",
    "local_strong",
    "load_weak_model",
    "open_strong_model",
    "parse_judge_output",
    "resolve_chat_model",
    "token_f1",
    "transient_errors",
    "with_call_policy",
]
