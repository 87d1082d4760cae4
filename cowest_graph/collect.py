"""Run the cowest graph over a dataset with tracing: the data-collection pass of the loop.

Resumable: examples that already have a successful trace in the store are skipped, so a rerun
after a kill records only the rest, with no duplicates.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.graph.state import CompiledStateGraph

from cowest_graph.data import Example
from cowest_graph.tracing import CowestTracer


@dataclass
class CollectReport:
    """What a collection pass did."""

    total: int = 0
    skipped: int = 0
    succeeded: int = 0
    failed: int = 0
    errors: dict[str, str] = field(default_factory=dict)
    """example id -> error, for the runs that failed (their traces are in the store)."""


async def acollect(
    graph: CompiledStateGraph[Any, Any, Any, Any],
    examples: Sequence[Example],
    tracer: CowestTracer,
    *,
    concurrency: int = 4,
    resume: bool = True,
    progress: bool = True,
    context: Any = None,
) -> CollectReport:
    """Run `graph` on every example (at most `concurrency` at once), traced by `tracer`.

    Concurrent runs share the weak model's batched `generate`. A failing run is recorded by the
    tracer and counted; the pass goes on.

    Example:
        >>> examples = load_questions("q.jsonl")  # doctest: +SKIP
        >>> report = asyncio.run(acollect(graph, examples, CowestTracer(url)))  # doctest: +SKIP
        >>> report.succeeded  # doctest: +SKIP
        24
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    report = CollectReport(total=len(examples))
    done = tracer.store.example_ids() if resume else set()
    todo = [e for e in examples if e.id not in done]
    report.skipped = len(examples) - len(todo)
    gate = asyncio.Semaphore(concurrency)

    from rich.progress import Progress

    with Progress(disable=not progress, transient=False) as bar:
        task = bar.add_task("collecting traces", total=len(todo))

        async def one(example: Example) -> None:
            async with gate:
                config: RunnableConfig = {
                    "callbacks": [tracer],
                    "metadata": {"cowest_example_id": example.id},
                }
                try:
                    await graph.ainvoke(
                        {"question": example.question, "reference": example.reference},
                        config=config,
                        context=context,
                    )
                    report.succeeded += 1
                except Exception as exc:  # noqa: BLE001 - traced with its error; the pass goes on
                    report.failed += 1
                    report.errors[example.id] = f"{type(exc).__name__}: {exc}"
                bar.advance(task)

        await asyncio.gather(*(one(e) for e in todo))
    await tracer.aflush()
    return report


def collect(
    graph: CompiledStateGraph[Any, Any, Any, Any],
    examples: Sequence[Example],
    tracer: CowestTracer,
    **kwargs: Any,
) -> CollectReport:
    """Synchronous `acollect`.

    Example:
        >>> collect(graph, examples, CowestTracer("sqlite:///traces.db"), concurrency=4)  # doctest: +SKIP
    """
    return asyncio.run(acollect(graph, examples, tracer, **kwargs))
