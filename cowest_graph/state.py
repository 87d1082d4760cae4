"""State, input/output schemas, reducers and the run context of the cowest subgraph."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypedDict, get_args

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages

NodeName = Literal["prepare", "weak_draft", "strong_refine", "critique", "strong_alone"]
"""The subgraph's node names (the graph builds them, the tracer recognises them)."""
NODE_NAMES: tuple[NodeName, ...] = get_args(NodeName)
"""The subgraph's node names; each node run also carries `cowest_node` in its metadata."""


class Draft(TypedDict):
    """One weak-model draft: background knowledge, reasoning and a tentative answer."""

    id: str
    """`r{round}d{index}`, unique within a run."""
    round: int
    text: str


class Candidate(TypedDict, total=False):
    """The strong model's answer built on one draft, with its critique."""

    id: str
    """The id of the draft it refines."""
    round: int
    draft: str
    answer: str | None
    score: float | None
    """Normalised to [0, 1]; None when the critique could not score it (see `score_error`)."""
    rationale: str | None
    score_error: str | None
    error: str | None
    """Set when the refinement itself failed for good (after retries)."""
    influence: float | None
    """score - alone score (the paper's Delta) when `strong_alone` was measured."""


class AloneResult(TypedDict, total=False):
    """The strong model's answer without any draft: the baseline of Delta."""

    answer: str | None
    score: float | None
    rationale: str | None
    score_error: str | None
    error: str | None


def upsert_by_id(left: list[Any] | None, right: list[Any] | None) -> list[Any]:
    """Reducer: items of `right` replace items of `left` with the same `id`; new ones append.

    Example:
        >>> upsert_by_id([{"id": "a", "x": 1}], [{"id": "a", "x": 2}, {"id": "b"}])
        [{'id': 'a', 'x': 2}, {'id': 'b'}]
    """
    merged = {item["id"]: item for item in (left or [])}
    for item in right or []:
        merged[item["id"]] = {**merged.get(item["id"], {}), **item}
    return list(merged.values())


class CowestInput(TypedDict, total=False):
    """What a run takes: a `question` (or the last human message of `messages`), and an
    optional `reference` answer used by reference-based scorers and the judge."""

    question: str
    reference: str | None
    messages: Annotated[list[AnyMessage], add_messages]


class CowestOutput(TypedDict, total=False):
    """What a run returns."""

    question: str
    answer: str
    messages: Annotated[list[AnyMessage], add_messages]
    drafts: Annotated[list[Draft], upsert_by_id]
    candidates: Annotated[list[Candidate], upsert_by_id]
    best: Candidate | None
    alone: AloneResult | None
    round: int


class CowestState(CowestInput, CowestOutput, total=False):
    """The full state of the cowest subgraph."""

    feedback: str | None
    """The critique of the best answer so far, given to the weak model on the next round."""


@dataclass
class CowestContext:
    """Per-run overrides (LangGraph `context_schema`): pass `context=CowestContext(...)`.

    Fields left as None use the values given to `create_cowest_graph`.

    Example:
        >>> graph.invoke({"question": "..."}, context=CowestContext(num_drafts=4))  # doctest: +SKIP
    """

    num_drafts: int | None = None
    max_rounds: int | None = None
    accept_score: float | None = None
