"""Evaluation: weak alone, strong alone, and collaboration, on held-out questions.

Honest by construction: the graph never sees the reference at evaluation time (its critique
cannot pick the answer that matches it), and inference uses one draft unless told otherwise;
answers are scored afterwards against the reference.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from langchain_core.language_models import BaseChatModel
from langgraph.graph.state import CompiledStateGraph

from cowest_graph.critique import extract_label
from cowest_graph.data import Example
from cowest_graph.prompts import CowestPrompts
from cowest_graph.stats import (  # noqa: F401 - re-exported: the statistics live in stats.py
    bootstrap_ci,
    holm,
    paired_difference,
    wilson_interval,
)
from cowest_graph.tracing import CowestTracer


@dataclass
class ConditionResult:
    """One evaluated condition."""

    name: str
    n: int
    accuracy: float
    ci_low: float
    ci_high: float
    macro_f1: float | None
    unparseable_rate: float
    strong_calls_per_q: float
    strong_tokens_per_q: float
    wall_s: float
    correct: list[int] = field(repr=False, default_factory=list)
    answers: list[str] = field(repr=False, default_factory=list)
    drafts: list[str] = field(repr=False, default_factory=list)
    """For a graph condition: each question's first weak draft (what the strong model read)."""

    def summary(self) -> dict[str, Any]:
        """The result without the per-question lists."""
        out = asdict(self)
        for key in ("correct", "answers", "drafts"):
            out.pop(key)
        return out


def macro_f1(predicted: Sequence[str | None], gold: Sequence[str], labels: Sequence[str]) -> float:
    """Macro-averaged F1 over `labels` (an unparseable prediction counts as wrong).

    Example:
        >>> macro_f1(["yes", "no", None], ["yes", "yes", "no"], ["yes", "no"])
        0.3333333333333333
    """
    scores = []
    for lab in labels:
        tp = sum(p == lab and g == lab for p, g in zip(predicted, gold, strict=True))
        fp = sum(p == lab and g != lab for p, g in zip(predicted, gold, strict=True))
        fn = sum(p != lab and g == lab for p, g in zip(predicted, gold, strict=True))
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return sum(scores) / len(scores)


Judge = Callable[[str, str | None], tuple[bool, bool]]
"""`judge(answer, reference) -> (correct, parseable)`."""


def keyword_judge(answer: str, reference: str | None) -> tuple[bool, bool]:
    """Correct when the reference keyword appears in the answer; unparseable when empty."""
    from cowest_graph.critique import contains_match

    if not answer.strip():
        return False, False
    return contains_match("", answer, reference) == 1.0, True


def answer_judge(answer: str, reference: str | None) -> tuple[bool, bool]:
    """Correct when the reply's final answer is the reference (`answer_match`); unparseable when
    the reply commits to nothing (no final answer line)."""
    from cowest_graph.critique import answer_match, final_answer

    if not final_answer(answer):
        return False, False
    return answer_match("", answer, reference) == 1.0, True


def label_judge(labels: Sequence[str]) -> Judge:
    """Correct when the label the answer commits to is the reference label."""

    def judge(answer: str, reference: str | None) -> tuple[bool, bool]:
        got = extract_label(answer, labels)
        return (
            got is not None and reference is not None and got.lower() == reference.lower(),
            got is not None,
        )

    return judge


@contextlib.contextmanager
def _progress(label: str, total: int, enabled: bool) -> Iterator[Callable[[], None]]:
    """A rich progress bar (when `enabled`) and the function that advances it by one."""
    from rich.progress import Progress

    with Progress(disable=not enabled) as bar:
        task = bar.add_task(label, total=total)
        yield lambda: bar.advance(task)


def _result(
    name: str,
    examples: Sequence[Example],
    answers: list[str],
    judge: Judge,
    labels: Sequence[str] | None,
    strong_calls: float,
    strong_tokens: float,
    wall: float,
) -> ConditionResult:
    verdicts = [judge(a, e.reference) for a, e in zip(answers, examples, strict=True)]
    correct = [int(c) for c, _ in verdicts]
    low, high = bootstrap_ci(correct)
    f1 = None
    if labels:
        preds = [extract_label(a, labels) for a in answers]  # spelled as in `labels`
        gold = [
            next((lab for lab in labels if lab.lower() == (e.reference or "").lower()), "") for e in examples
        ]
        f1 = macro_f1(preds, gold, labels)
    n = len(examples)
    return ConditionResult(
        name=name,
        n=n,
        accuracy=sum(correct) / n,
        ci_low=low,
        ci_high=high,
        macro_f1=f1,
        unparseable_rate=sum(not p for _, p in verdicts) / n,
        strong_calls_per_q=strong_calls / n,
        strong_tokens_per_q=strong_tokens / n,
        wall_s=wall,
        correct=correct,
        answers=answers,
    )


async def evaluate_model_alone(
    name: str,
    model: BaseChatModel,
    examples: Sequence[Example],
    *,
    judge: Judge = keyword_judge,
    labels: Sequence[str] | None = None,
    prompts: CowestPrompts | None = None,
    messages: Callable[[str], list[Any]] | None = None,
    counts_as_strong: bool = False,
    concurrency: int | None = None,
    progress: bool = False,
) -> ConditionResult:
    """One model answers every question alone (by default the alone prompt, same answer format;
    `messages=prompts.weak_messages` asks the weak model in the format it was trained on).

    Example:
        >>> asyncio.run(evaluate_model_alone("strong alone", strong, examples))  # doctest: +SKIP
    """
    prompts = prompts or CowestPrompts()
    start = time.perf_counter()
    build = messages or prompts.alone_messages
    gate = asyncio.Semaphore(concurrency or max(1, len(examples)))  # None: all at once
    with _progress(name, len(examples), progress) as advance:

        async def one(example: Example) -> Any:
            async with gate:
                reply = await model.ainvoke(build(example.question))
                advance()
                return reply

        replies = await asyncio.gather(*(one(e) for e in examples))
    wall = time.perf_counter() - start
    answers = [r.text for r in replies]
    tokens = sum(((r.usage_metadata or {}).get("total_tokens", 0)) for r in replies)
    calls = len(examples) if counts_as_strong else 0
    return _result(name, examples, answers, judge, labels, calls, tokens if counts_as_strong else 0, wall)


async def evaluate_graph(
    name: str,
    graph: CompiledStateGraph[Any, Any, Any, Any],
    examples: Sequence[Example],
    *,
    judge: Judge = keyword_judge,
    labels: Sequence[str] | None = None,
    concurrency: int = 8,
    context: Any = None,
    tracer: CowestTracer | None = None,
    resume: bool = False,
    progress: bool = False,
) -> ConditionResult:
    """The cowest graph answers every question; the reference is withheld from the graph.

    Strong-model calls and tokens per question are read from the runs' traces (`tracer`, or a
    temporary SQLite store). With `resume=True` the `tracer`'s store is this condition's own
    (a file that outlives the process): a question that already has a successful run there is
    not asked again, its answer and first draft are read back, so a condition cut after an hour
    goes on where it stopped. Calls and tokens then count every run of these questions in the
    store, and wall time is the time at least one question was in flight (the union of the
    runs' intervals: the gap between a cut run and its resumption is left out).

    Example:
        >>> asyncio.run(evaluate_graph("cowest", graph, examples))  # doctest: +SKIP
        >>> tracer = CowestTracer("sqlite:///work/cowest.db")  # doctest: +SKIP
        >>> asyncio.run(evaluate_graph("cw", graph, examples, tracer=tracer, resume=True))  # doctest: +SKIP
    """
    if resume and tracer is None:
        raise ValueError("resume=True needs a tracer whose store keeps this condition's earlier runs")
    with tempfile.TemporaryDirectory() as tmp:
        tracer = tracer or CowestTracer(f"sqlite:///{tmp}/eval.db")
        ids = {e.id for e in examples}
        kept = _kept_outputs(tracer, ids) if resume else {}
        seen_before = set() if resume else {r.run_id for r in tracer.store.list_runs()}
        gate = asyncio.Semaphore(concurrency)
        start = time.perf_counter()

        async def one(example: Example, advance: Callable[[], None]) -> tuple[str, str]:
            if example.id in kept:
                return kept[example.id]
            async with gate:
                config: Any = {"callbacks": [tracer], "metadata": {"cowest_example_id": example.id}}
                try:
                    out = await graph.ainvoke({"question": example.question}, config=config, context=context)
                except Exception:  # noqa: BLE001 - a failed run answers nothing (counted unparseable)
                    return "", ""
                finally:
                    advance()
                return _answer_and_draft(out)

        with _progress(name, sum(e.id not in kept for e in examples), progress) as advance:
            outputs = await asyncio.gather(*(one(e, advance) for e in examples))
        answers = [a for a, _ in outputs]
        wall = time.perf_counter() - start
        await tracer.aflush()
        calls = tokens = 0
        spans: list[tuple[float, float]] = []
        for rec in tracer.store.iter_runs():
            if rec["run_id"] in seen_before or (resume and rec.get("example_id") not in ids):
                continue
            spans.append((rec.get("started_at") or 0.0, rec.get("ended_at") or 0.0))
            for role in ("strong", "alone", "judge"):
                use = (rec.get("usage") or {}).get(role) or {}
                calls += use.get("calls", 0)
                tokens += use.get("input_tokens", 0) + use.get("output_tokens", 0)
    if resume:
        wall = busy_time(spans)
    result = _result(name, examples, answers, judge, labels, calls, tokens, wall)
    result.drafts = [d for _, d in outputs]
    return result


def _kept_outputs(tracer: CowestTracer, ids: set[str]) -> dict[str, tuple[str, str]]:
    """(answer, first draft) of each question with a successful run in the store (the latest)."""
    kept: dict[str, tuple[str, str]] = {}
    for rec in tracer.store.iter_runs(status="success"):  # oldest first: a later run wins
        if rec.get("example_id") in ids:
            kept[rec["example_id"]] = _answer_and_draft(rec)
    return kept


def _answer_and_draft(run: Mapping[str, Any]) -> tuple[str, str]:
    """The answer and the first weak draft of a graph run: its output state or its trace record."""
    drafts = run.get("drafts") or []
    return str(run.get("answer") or ""), str(drafts[0]["text"]) if drafts else ""


def busy_time(spans: Sequence[tuple[float, float]]) -> float:
    """Seconds during which at least one of the (start, end) intervals was open.

    >>> busy_time([(0, 2), (1, 3), (10, 11)])
    4.0
    """
    total, reach = 0.0, float("-inf")
    for begin, end in sorted(spans):
        if end > reach:
            total += end - max(begin, reach)
            reach = end
    return total


def drafts_as_answers(
    name: str,
    graph_result: ConditionResult,
    examples: Sequence[Example],
    *,
    judge: Judge = keyword_judge,
    labels: Sequence[str] | None = None,
) -> ConditionResult:
    """Score the weak drafts that a graph condition produced as the weak model's own answers.

    With one greedy draft per question this is exactly "weak alone" (the same weak prompt, the
    same greedy tokens) without generating the drafts a second time; wall time is not measured.

    Example:
        >>> weak = drafts_as_answers("weak alone", cowest, examples)  # doctest: +SKIP
    """
    if len(graph_result.drafts) != len(examples):
        raise ValueError(
            f"{graph_result.name!r} holds {len(graph_result.drafts)} drafts for {len(examples)} questions"
        )
    return _result(name, examples, list(graph_result.drafts), judge, labels, 0, 0, float("nan"))
