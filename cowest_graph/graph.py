r"""`create_cowest_graph`: the weak-draft / strong-refine / critique subgraph.

```
START -> prepare -> weak_draft -> strong_refine -> critique -> END
                \                     ^               |
                 \-> strong_alone     +---- feedback -+   (while below accept_score and rounds remain)
                     (measure_influence=True: the no-draft baseline of Delta)
```
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda
from langgraph.graph import END, START, StateGraph
from langgraph.types import RetryPolicy

from cowest_graph.critique import Scorer
from cowest_graph.nodes import (
    CowestRunError,
    _check_accept,
    _check_positive,
    _CowestNodes,
    _run_sync,
    _Settings,
)
from cowest_graph.prompts import CowestPrompts
from cowest_graph.retry import DEFAULT_RETRY, with_call_policy
from cowest_graph.state import (
    NODE_NAMES,
    CowestContext,
    CowestInput,
    CowestOutput,
    CowestState,
)

__all__ = ["NODE_NAMES", "CowestRunError", "create_cowest_graph"]


def _route(state: CowestState) -> Literal["weak_draft", "__end__"]:
    return "weak_draft" if state.get("feedback") else "__end__"


def _node(name: str, afunc: Callable[..., Awaitable[Any]]) -> Runnable[Any, Any]:
    def func(state: CowestState, config: RunnableConfig) -> Any:
        return _run_sync(afunc, state, config)

    return RunnableLambda(func, afunc=afunc, name=name)


def create_cowest_graph(
    weak: BaseChatModel,
    strong: BaseChatModel,
    *,
    critic: BaseChatModel | None = None,
    scorer: Scorer | None = None,
    num_drafts: int = 1,
    max_rounds: int = 1,
    accept_score: float | None = None,
    prompts: CowestPrompts | None = None,
    measure_influence: bool = False,
    retry: RetryPolicy | None = DEFAULT_RETRY,
    call_timeout: float | None = None,
    max_concurrency: int = 8,
) -> StateGraph[CowestState, CowestContext, CowestInput, CowestOutput]:
    """Build the CoWest subgraph: the weak model drafts, the strong model refines, a critique
    scores and selects. Returns an uncompiled `StateGraph` (compile it with your checkpointer).

    Args:
        weak: the weak (domain) chat model; a `WeakModel` samples all drafts in one `generate`.
        strong: the strong chat model that turns each draft into an answer.
        critic: an LLM judge (score 0-10 + rationale). Defaults to `strong` when no `scorer`.
        scorer: `scorer(question, answer, reference) -> [0, 1]` instead of a judge.
        num_drafts: drafts per round (k).
        max_rounds: rounds at most; another round runs while the best score < `accept_score`.
        accept_score: the score in [0, 1] that ends the loop; None: one round suffices.
        prompts: the templates (`CowestPrompts`).
        measure_influence: also run `strong_alone`, the strong model without a draft, so each
            candidate gets `influence` = score - alone score (the paper's Delta).
        retry: LangGraph `RetryPolicy` applied to each strong/judge call (transient errors).
        call_timeout: seconds per strong/judge call attempt.
        max_concurrency: strong/judge calls in flight at once within one run.

    Example (scripted models stand in for the weak and strong ones here):
        >>> from cowest_graph.critique import exact_match
        >>> from cowest_graph.testing import ScriptedChatModel
        >>> weak = ScriptedChatModel(respond=lambda m: "Paris is the capital of France.")
        >>> strong = ScriptedChatModel(respond=lambda m: "Paris")
        >>> graph = create_cowest_graph(weak, strong, scorer=exact_match, num_drafts=2).compile()
        >>> out = graph.invoke({"question": "Capital of France?", "reference": "Paris"})
        >>> out["answer"], len(out["candidates"]), out["best"]["score"]
        ('Paris', 2, 1.0)
    """
    for role, model in (("weak", weak), ("strong", strong), ("critic", critic)):
        if model is not None and not isinstance(model, Runnable):
            raise TypeError(f"{role} must be a LangChain chat model, got {type(model).__name__}")
    if critic is not None and scorer is not None:
        raise ValueError("give either critic (an LLM judge) or scorer, not both")
    if scorer is not None and not callable(scorer):
        raise TypeError("scorer must be callable as scorer(question, answer, reference)")
    defaults = _Settings(
        num_drafts=_check_positive("num_drafts", num_drafts),
        max_rounds=_check_positive("max_rounds", max_rounds),
        accept_score=_check_accept(accept_score),
    )
    _check_positive("max_concurrency", max_concurrency)
    judge = None if scorer is not None else (critic or strong)
    nodes = _CowestNodes(
        weak=weak,
        strong=with_call_policy(strong, retry=retry, timeout=call_timeout),
        critic=None if judge is None else with_call_policy(judge, retry=retry, timeout=call_timeout),
        scorer=scorer,
        defaults=defaults,
        prompts=prompts or CowestPrompts(),
        max_concurrency=max_concurrency,
    )
    builder: StateGraph[CowestState, CowestContext, CowestInput, CowestOutput] = StateGraph(
        CowestState,
        context_schema=CowestContext,
        input_schema=CowestInput,
        output_schema=CowestOutput,
    )
    for name in NODE_NAMES:
        if name == "strong_alone" and not measure_influence:
            continue
        builder.add_node(name, _node(name, getattr(nodes, name)), metadata={"cowest_node": name})
    builder.add_edge(START, "prepare")
    builder.add_edge("prepare", "weak_draft")
    builder.add_edge("weak_draft", "strong_refine")
    builder.add_edge("strong_refine", "critique")
    builder.add_conditional_edges("critique", _route, ["weak_draft", END])
    if measure_influence:
        # Runs beside weak_draft; its answer is in the state before critique runs.
        builder.add_edge("prepare", "strong_alone")
    return builder
