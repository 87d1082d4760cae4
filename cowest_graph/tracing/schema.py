"""The trace record: one run of the cowest subgraph as the tracer writes it and a store returns it.

`TraceRecord` holds the run's summary (the store's columns, see `store/columns.py`), its drafts
(`DraftRecord`: the draft with the exact weak prompt and sampling it came from), the strong
model's `candidates` and `alone` answer, and `nodes`: every node execution (`NodeRecord`) with
every model call inside it (`CallRecord`). Records are plain JSON objects; these types say which
keys they have.

Example:
    >>> from cowest_graph.tracing.schema import ROLES, WEAK_CALL_KEYS
    >>> ROLES
    ('weak', 'strong', 'alone', 'judge')
    >>> "rendered_prompt" in WEAK_CALL_KEYS
    True
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict, get_args

from cowest_graph.models.weak import WeakCallOutput
from cowest_graph.state import AloneResult, Candidate, NodeName

Role = Literal["weak", "strong", "alone", "judge"]
"""Who a model call was: the weak drafter, the strong refiner, the strong model without a draft
(`alone`), or the judge of the critique."""
ROLES: tuple[Role, ...] = get_args(Role)

Status = Literal["running", "success", "error"]


class CallUsage(TypedDict):
    """Tokens of one model call."""

    input_tokens: int
    output_tokens: int


class RoleUsage(CallUsage):
    """Calls and tokens of one role over a run."""

    calls: int


class Usage(TypedDict):
    """A run's calls and tokens per role."""

    weak: RoleUsage
    strong: RoleUsage
    alone: RoleUsage
    judge: RoleUsage


class CallRecord(TypedDict, total=False):
    """One model call inside a node: exactly what went in and what came out."""

    run_id: str
    role: Role
    item: str | None
    """The draft id it worked on (`r1d0`), `alone`, or None."""
    messages: list[dict[str, Any]]
    """The messages as sent (role, content, name)."""
    model: str | None
    params: dict[str, Any]
    """Invocation parameters (temperature, max tokens, seed, ...)."""
    started_at: float
    latency_s: float
    outputs: list[str]
    usage: CallUsage
    error: str
    # Reported by a `WeakModel` (its `WeakCallOutput`); absent for other chat models.
    backend: str
    adapter_version: str | None
    rendered_prompt: str
    """The exact text the weak model continued (chat template applied, after truncation)."""
    rendered_messages: list[dict[str, str]] | None
    truncated_tokens: int
    sampling: dict[str, Any]
    queue_wait_s: float | None


WEAK_CALL_KEYS: tuple[str, ...] = tuple(
    k for k in CallRecord.__annotations__ if k in WeakCallOutput.__annotations__
)
"""The keys of a weak model's call report that a call record keeps."""


class NodeRecord(TypedDict, total=False):
    """One execution of a cowest node."""

    node: NodeName
    run_id: str
    step: int | None
    """LangGraph's superstep."""
    round: int
    started_at: float
    latency_s: float
    inputs: Any
    """What the node read: the question and the parts of the state it works on."""
    outputs: Any
    calls: list[CallRecord]
    error: str


class DraftRecord(TypedDict, total=False):
    """A weak draft and the exact prompt and settings it was sampled with (what training uses)."""

    id: str
    round: int
    text: str
    prompt_messages: list[dict[str, Any]]
    rendered_messages: list[dict[str, str]] | None
    rendered_prompt: str | None
    adapter_version: str | None
    weak_model: str | None
    sampling: dict[str, Any] | None


class TraceRecord(TypedDict, total=False):
    """One run of the cowest subgraph."""

    run_id: str
    parent_run_id: str | None
    thread_id: str | None
    example_id: str | None
    checkpoint_ns: str | None
    started_at: float
    ended_at: float
    latency_s: float
    status: Status
    error: str
    question: str | None
    reference: str | None
    rounds: int
    nodes: list[NodeRecord]
    drafts: list[DraftRecord]
    candidates: list[Candidate]
    alone: AloneResult | None
    best: Candidate | None
    answer: str | None
    best_score: float | None
    weak_model: str | None
    adapter_version: str | None
    strong_model: str | None
    usage: Usage
    nonfinite: dict[str, str]
    """Where a score was NaN or infinite (stored as null) and what it was."""
