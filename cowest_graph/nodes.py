"""The subgraph's nodes: what `prepare`, `weak_draft`, `strong_refine`, `strong_alone` and
`critique` do, and how their async bodies run under a sync `invoke`."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.config import merge_configs
from langgraph.config import get_stream_writer
from langgraph.errors import GraphBubbleUp
from langgraph.runtime import get_runtime
from langgraph.types import Overwrite

from cowest_graph.critique import JudgeParseError, Scorer, parse_judge_output
from cowest_graph.models import WeakModel
from cowest_graph.prompts import CowestPrompts
from cowest_graph.state import (
    AloneResult,
    Candidate,
    CowestContext,
    CowestState,
    Draft,
)


class CowestRunError(RuntimeError):
    """A run could not produce any answer (every candidate failed)."""


def _error_text(exc: BaseException) -> str:
    """The error as one line, naming the endpoint of an HTTP client's ("Connection error." alone)."""
    text = f"{type(exc).__name__}: {exc}"
    try:
        request = getattr(exc, "request", None)
    except RuntimeError:  # httpx raises when an error carries no request
        request = None
    url = getattr(request, "url", None)
    if url is not None and str(url) not in text:
        text += f" ({getattr(request, 'method', 'request')} {url})"
    return text


def _resolve_question(state: CowestState) -> str:
    question = state.get("question")
    if question is None:
        humans = [m for m in state.get("messages") or [] if m.type == "human"]
        question = humans[-1].text if humans else None
    if not isinstance(question, str) or not question.strip():
        raise ValueError(
            "question must be a non-empty string (give `question`, or `messages` ending with a human message)"
        )
    return question.strip()


def _check_positive(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return value


def _check_accept(value: float | None) -> float | None:
    if value is not None and not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"accept_score must be in [0, 1] (scores are normalised), got {value!r}")
    return value


_SYNC_CALLS: ContextVar[bool] = ContextVar("cowest_sync_calls", default=False)
"""True inside a node run from the sync `invoke` path (see `_run_sync`)."""

_SYNC_WORKERS = 32


async def _call_model(model: Runnable[Any, Any], messages: Any, config: RunnableConfig) -> Any:
    """Call a model from a node: natively async under `ainvoke`; under the sync `invoke` path,
    through the model's own sync `invoke` in a worker thread.

    The sync path runs each node in a throwaway event loop, and async clients that outlive a loop
    (ChatOpenAI caches one httpx `AsyncClient` per base URL, process-wide) fail on the next one
    with "Event loop is closed". Sync clients have no loop to lose.
    """
    if _SYNC_CALLS.get():
        return await asyncio.to_thread(model.invoke, messages, config)
    return await model.ainvoke(messages, config)


_SYNC_ONLY: set[int] = set()
"""ids of models whose async path raised NotImplementedError (e.g. `ChatHuggingFace` over a local
`HuggingFacePipeline`): they run their sync path in a worker thread from then on."""


async def _call_batch(model: Runnable[Any, Any], inputs: list[Any], config: RunnableConfig) -> list[Any]:
    """`model.abatch`, or under the sync `invoke` path (and for sync-only models) `model.batch` in
    a worker thread."""
    if _SYNC_CALLS.get() or id(model) in _SYNC_ONLY:
        return await asyncio.to_thread(model.batch, inputs, config)
    try:
        return await model.abatch(inputs, config)
    except NotImplementedError:
        _SYNC_ONLY.add(id(model))
        return await asyncio.to_thread(model.batch, inputs, config)


def _run_sync(afunc: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    """Run an async node from the sync `invoke` path, even where a loop already runs.

    Model calls inside it go through the models' sync APIs (`_call_model`), on a pool large
    enough for the node's concurrent calls.
    """

    async def sync_mode() -> Any:
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(max_workers=_SYNC_WORKERS, thread_name_prefix="cowest-sync")
        )
        _SYNC_CALLS.set(True)
        return await afunc(*args)

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(sync_mode())
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(sync_mode())
        except BaseException as exc:  # noqa: BLE001 - re-raised below in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def _model_id(model: Any) -> str | None:
    """The model's own id (`model_id`, `model_name` or `model`, whichever it has), or None."""
    for attr in ("model_id", "model_name", "model"):
        value = getattr(model, attr, None)
        if isinstance(value, str) and value:
            return value
    return None


def _with_meta(config: RunnableConfig, **metadata: Any) -> RunnableConfig:
    return merge_configs(config, {"metadata": metadata})


@dataclass
class _Settings:
    num_drafts: int
    max_rounds: int
    accept_score: float | None


class _CowestNodes:
    """The node functions, closed over the models and settings of one graph."""

    def __init__(
        self,
        *,
        weak: BaseChatModel,
        strong: Runnable[Any, Any],
        critic: Runnable[Any, Any] | None,
        scorer: Scorer | None,
        defaults: _Settings,
        prompts: CowestPrompts,
        max_concurrency: int,
    ) -> None:
        self.weak = weak
        self.strong = strong
        self.critic = critic
        self.scorer = scorer
        self.defaults = defaults
        self.prompts = prompts
        self.max_concurrency = max_concurrency

    # -- helpers -----------------------------------------------------------------------------
    def settings(self) -> _Settings:
        try:
            ctx = get_runtime().context
        except RuntimeError:  # called outside a graph run
            ctx = None
        d = self.defaults
        if not isinstance(ctx, CowestContext):
            return d
        return _Settings(
            num_drafts=_check_positive("num_drafts", ctx.num_drafts or d.num_drafts),
            max_rounds=_check_positive("max_rounds", ctx.max_rounds or d.max_rounds),
            accept_score=_check_accept(ctx.accept_score if ctx.accept_score is not None else d.accept_score),
        )

    @staticmethod
    def emit(event: dict[str, Any]) -> None:
        try:
            get_stream_writer()(event)
        except RuntimeError:  # not inside a graph run
            pass

    async def score(
        self, question: str, answer: str, reference: str | None, config: RunnableConfig, key: str
    ) -> tuple[float | None, str | None, str | None]:
        """Return `(score, rationale, score_error)`; never raises for a bad judge reply."""
        if self.scorer is not None:
            try:
                value = self.scorer(question, answer, reference)
            except ValueError as exc:
                return None, None, str(exc)
            if value is None or not 0.0 <= float(value) <= 1.0:
                return None, None, f"scorer returned {value!r}, not a score in [0, 1]"
            name = getattr(self.scorer, "__name__", type(self.scorer).__name__)
            return float(value), f"{name}={float(value):.3f}", None
        assert self.critic is not None
        messages = self.prompts.judge_messages(question, answer, reference)
        try:
            reply = await _call_model(self.critic, messages, _with_meta(config, cowest_item=key))
            value, rationale = parse_judge_output(reply.text)
        except JudgeParseError as exc:
            return None, None, str(exc)
        except GraphBubbleUp:
            raise
        except Exception as exc:  # noqa: BLE001 - a judge outage must not lose the answers
            return None, None, f"judge call failed: {_error_text(exc)}"
        return value, rationale, None

    # -- nodes -------------------------------------------------------------------------------
    async def prepare(self, state: CowestState, config: RunnableConfig) -> dict[str, Any]:
        question = _resolve_question(state)
        if isinstance(self.weak, WeakModel):  # a newly promoted adapter takes over between runs
            await asyncio.to_thread(self.weak.refresh_adapter)
        update: dict[str, Any] = {
            "question": question,
            "round": 0,
            "drafts": Overwrite([]),
            "candidates": Overwrite([]),
            "best": None,
            "alone": None,
            "feedback": None,
        }
        if not state.get("messages"):
            update["messages"] = [HumanMessage(question)]
        return update

    async def weak_draft(self, state: CowestState, config: RunnableConfig) -> dict[str, Any]:
        settings = self.settings()
        round_ = state.get("round", 0) + 1
        k = settings.num_drafts
        messages = self.prompts.weak_messages(state["question"], state.get("feedback"))
        self.emit({"node": "weak_draft", "event": "drafting", "round": round_, "num_drafts": k})
        if isinstance(self.weak, WeakModel):  # k samples from ONE batched generate
            result = await self.weak.agenerate(
                [messages],
                callbacks=config.get("callbacks"),
                tags=config.get("tags"),
                metadata=config.get("metadata"),
                n=k,
            )
            texts = [g.text for g in result.generations[0]]
        else:
            # A chat model that names no model to LangChain (ChatHuggingFace) is recorded by its own id.
            named = _model_id(self.weak)
            call_config = _with_meta(config, ls_model_name=named) if named else config
            replies = await _call_batch(self.weak, [messages] * k, call_config)
            texts = [r.text for r in replies]
        drafts = [Draft(id=f"r{round_}d{i}", round=round_, text=t) for i, t in enumerate(texts)]
        self.emit(
            {"node": "weak_draft", "event": "drafted", "round": round_, "drafts": [d["id"] for d in drafts]}
        )
        return {"drafts": drafts, "round": round_}

    async def strong_refine(self, state: CowestState, config: RunnableConfig) -> dict[str, Any]:
        round_ = state["round"]
        drafts = [d for d in state.get("drafts", []) if d["round"] == round_]
        gate = asyncio.Semaphore(self.max_concurrency)
        question = state["question"]

        async def refine(draft: Draft) -> Candidate:
            async with gate:
                self.emit({"node": "strong_refine", "event": "refining", "draft": draft["id"]})
                candidate = Candidate(id=draft["id"], round=round_, draft=draft["text"])
                try:
                    reply = await _call_model(
                        self.strong,
                        self.prompts.strong_messages(question, draft["text"]),
                        _with_meta(config, cowest_item=draft["id"]),
                    )
                    candidate["answer"], candidate["error"] = reply.text, None
                except GraphBubbleUp:
                    raise
                except Exception as exc:  # noqa: BLE001 - recorded; the other drafts go on
                    candidate["answer"], candidate["error"] = None, _error_text(exc)
                self.emit(
                    {
                        "node": "strong_refine",
                        "event": "refined",
                        "draft": draft["id"],
                        "failed": candidate.get("error") is not None,
                    }
                )
                return candidate

        candidates = await asyncio.gather(*(refine(d) for d in drafts))
        return {"candidates": list(candidates)}

    async def strong_alone(self, state: CowestState, config: RunnableConfig) -> dict[str, Any]:
        alone = AloneResult(answer=None, error=None)
        try:
            reply = await _call_model(
                self.strong,
                self.prompts.alone_messages(state["question"]),
                _with_meta(config, cowest_item="alone"),
            )
            alone["answer"] = reply.text
        except GraphBubbleUp:
            raise
        except Exception as exc:  # noqa: BLE001 - the baseline is optional; the run goes on
            alone["error"] = _error_text(exc)
        return {"alone": alone}

    async def critique(self, state: CowestState, config: RunnableConfig) -> dict[str, Any]:
        settings = self.settings()
        question, reference = state["question"], state.get("reference")
        round_ = state["round"]
        todo: list[Candidate] = [
            c for c in state.get("candidates", []) if c["round"] == round_ and c.get("answer") is not None
        ]
        alone: dict[str, Any] | None = dict(state.get("alone") or {}) or None
        score_alone = bool(alone and alone.get("answer") is not None and "score" not in alone)

        async def grade(key: str, answer: str) -> tuple[float | None, str | None, str | None]:
            result = await self.score(question, answer, reference, config, key)
            self.emit(
                {"node": "critique", "event": "scored", "item": key, "score": result[0], "error": result[2]}
            )
            return result

        jobs = [grade(c["id"], c["answer"] or "") for c in todo]
        if score_alone:
            assert alone is not None
            jobs.append(grade("alone", alone["answer"]))
        results = await asyncio.gather(*jobs)
        if score_alone:
            assert alone is not None
            alone["score"], alone["rationale"], alone["score_error"] = results.pop()
        scored = {
            c["id"]: Candidate(id=c["id"], score=s, rationale=r, score_error=e)
            for c, (s, r, e) in zip(todo, results, strict=True)
        }
        everything: list[dict[str, Any]] = [
            {**c, **scored.get(c["id"], {})} for c in state.get("candidates", [])
        ]
        alone_score = alone.get("score") if alone else None
        for cand in everything:
            if alone_score is not None and cand.get("score") is not None:
                scored.setdefault(cand["id"], Candidate(id=cand["id"]))
                cand["influence"] = scored[cand["id"]]["influence"] = cand["score"] - alone_score
        update: dict[str, Any] = {"candidates": list(scored.values())}
        if alone is not None:
            update["alone"] = alone

        answered = [c for c in everything if c.get("answer") is not None]
        best = max(
            answered,
            key=lambda c: (c.get("score") is not None, c.get("score") or 0.0),
            default=None,
        )
        best_score = best.get("score") if best else None
        more = round_ < settings.max_rounds
        if best is None and not more:
            errors = "; ".join(f"{c['id']}: {c.get('error')}" for c in everything)
            raise CowestRunError(f"every candidate failed after {round_} round(s): {errors}")
        needs_work = best is None or (
            settings.accept_score is not None and (best_score is None or best_score < settings.accept_score)
        )
        if more and needs_work:
            if best is None:
                update["feedback"] = "every answer built on the previous notes failed"
            else:
                shown = "unscored" if best_score is None else f"{best_score:.2f}"
                update["feedback"] = f"score {shown}: {best.get('rationale') or best.get('score_error')}"
            return update
        assert best is not None
        update.update(
            best=best,
            answer=best["answer"],
            feedback=None,
            messages=[AIMessage(best["answer"] or "", name="cowest")],
        )
        return update
