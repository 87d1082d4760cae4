"""cowest_graph: weak-strong model collaboration (CoWest, ACL 2025) for LangGraph.

A local weak model drafts, a strong chat model refines, a critique scores and selects; a tracer
records every run, and an offline trainer aligns the weak model with the strong model's
preferences (collaborative-feedback DPO).
"""

from cowest_graph.critique import (
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
from cowest_graph.strong import local_strong, open_strong_model, resolve_chat_model
from cowest_graph.tools import create_cowest_tool

__version__ = "0.1.0"

__all__ = [
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
