"""Run the cowest graph over a dataset with tracing: the data-collection pass of the loop.

Resumable: examples that already have a successful trace in the store are skipped, so a rerun
after a kill records only the rest, with no duplicates. `CollectionRecipe` holds how feedback is
collected (drafts per question, their sampling) and turned into pairs (which prompts and pairs
are kept), so the demo, `improve` and the benchmarks collect the same way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from langchain_core.caches import BaseCache
from langchain_core.runnables import RunnableConfig
from langgraph.graph.state import CompiledStateGraph

from cowest_graph.data import Example
from cowest_graph.tracing import CowestTracer

if TYPE_CHECKING:
    from cowest_graph.critique import Scorer
    from cowest_graph.pair_dataset import PreferencePairs
    from cowest_graph.prompts import CowestPrompts


@dataclass
class CollectionRecipe:
    """How collaborative feedback is collected and which of it becomes preference pairs.

    The defaults follow the published recipes that paid (M-Pilot / Matryoshka: 8-10 drafts per
    question sampled at T = 1, a gold reward, only questions with both a passing and a failing
    draft); the demo's older settings are `CollectionRecipe(num_drafts=4, require_contrast=False)`.

    Example:
        >>> recipe = CollectionRecipe(num_drafts=8, max_pairs_per_prompt=2)
        >>> recipe.pair_kwargs()["require_contrast"], recipe.weak_sampling()
        (True, {'temperature': 1.0, 'top_p': 1.0})
    """

    num_drafts: int = field(
        default=8, metadata={"help": "Drafts per question (k), from one batched generate."}
    )
    temperature: float = field(
        default=1.0, metadata={"help": "Weak-model sampling temperature of the drafts."}
    )
    top_p: float = field(
        default=1.0, metadata={"help": "Weak-model nucleus sampling of the drafts (1.0: off)."}
    )
    share_identical_drafts: bool = field(
        default=True,
        metadata={
            "help": "Identical drafts of a question cost one strong call (the strong model is greedy, "
            "so a cached answer is the answer it would give)."
        },
    )
    require_contrast: bool = field(
        default=True,
        metadata={
            "help": "Keep only prompts with a draft that helped (Delta > 0) and one that did not, and only "
            "such pairs."
        },
    )
    max_pairs_per_prompt: int = field(default=4, metadata={"help": "At most this many pairs per question."})
    min_margin: float = field(
        default=0.5, metadata={"help": "The least Delta gap of a pair (scores in [0, 1])."}
    )

    def __post_init__(self) -> None:
        if self.num_drafts < 2:
            raise ValueError(f"num_drafts must be >= 2 to compare drafts, got {self.num_drafts}")
        if self.temperature <= 0:
            raise ValueError(
                f"temperature must be > 0 (greedy drafts are all the same), got {self.temperature}"
            )
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")

    def weak_sampling(self) -> dict[str, float]:
        """The weak model's sampling fields for collection (`weak.model_copy(update=...)`)."""
        return {"temperature": self.temperature, "top_p": self.top_p}

    def pair_kwargs(self) -> dict[str, Any]:
        """The `build_preference_pairs` arguments this recipe sets."""
        return {
            "min_margin": self.min_margin,
            "max_pairs_per_prompt": self.max_pairs_per_prompt,
            "require_contrast": self.require_contrast,
        }

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def graph(
        self,
        weak: Any,
        strong: Any,
        *,
        scorer: Scorer,
        prompts: CowestPrompts | None = None,
        cache: BaseCache | None = None,
    ) -> CompiledStateGraph[Any, Any, Any, Any]:
        """The collection graph: k sampled drafts, each refined by the strong model and scored
        against the reference, and the strong model alone (the baseline of Delta).

        Example:
            >>> from cowest_graph.critique import exact_match
            >>> from cowest_graph.testing import ScriptedChatModel
            >>> weak = ScriptedChatModel(respond=lambda m: "d")
            >>> strong = ScriptedChatModel(respond=lambda m: "a")
            >>> out = CollectionRecipe(num_drafts=2).graph(weak, strong, scorer=exact_match).invoke(
            ...     {"question": "q", "reference": "a"})
            >>> len(out["candidates"]), out["alone"]["score"]
            (2, 1.0)
        """
        from cowest_graph.graph import create_cowest_graph
        from cowest_graph.models.cache import cached

        sampling = self.weak_sampling()
        fields = getattr(type(weak), "model_fields", {})
        drafter = weak.model_copy(update={k: v for k, v in sampling.items() if k in fields})
        refiner = cached(strong, cache) if self.share_identical_drafts else strong
        return create_cowest_graph(
            drafter,
            refiner,
            scorer=scorer,
            num_drafts=self.num_drafts,
            measure_influence=True,
            prompts=prompts,
        ).compile()

    def pairs(self, source: Any, **kwargs: Any) -> PreferencePairs:
        """`build_preference_pairs(source, ...)` with this recipe's filters (`kwargs` add to them).

        Example:
            >>> pairs = CollectionRecipe().pairs("sqlite:///traces.db", eval_fraction=0.0)  # doctest: +SKIP
        """
        from cowest_graph.feedback import build_preference_pairs

        return build_preference_pairs(source, **{**self.pair_kwargs(), **kwargs})


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
