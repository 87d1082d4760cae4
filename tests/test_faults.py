"""Fault injection: transient errors retried, hangs timed out, garbage judged None, traces kept."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

import httpx
import openai
import pytest
from langchain_core.messages import BaseMessage
from langgraph.types import RetryPolicy

from cowest_graph import create_cowest_graph
from cowest_graph.models import WeakModel
from cowest_graph.testing import ScriptedChatModel
from cowest_graph.tracing import CowestTracer

FAST = RetryPolicy(initial_interval=0.01, backoff_factor=2.0, max_interval=0.05, max_attempts=3, jitter=True)
REQ = httpx.Request("POST", "http://127.0.0.1:9/v1/chat/completions")


def rate_limited() -> Exception:
    return openai.RateLimitError("rate limited", response=httpx.Response(429, request=REQ), body=None)


def server_error() -> Exception:
    return openai.InternalServerError("overloaded", response=httpx.Response(503, request=REQ), body=None)


def half(q: str, a: str, r: str | None) -> float:
    return 0.5


@pytest.fixture(scope="module")
def tiny(weak: WeakModel) -> WeakModel:
    return weak.model_copy(update={"max_new_tokens": 3})


@pytest.mark.parametrize(
    "fault",
    [
        rate_limited,
        server_error,
        lambda: openai.APIConnectionError(request=REQ),
        lambda: TimeoutError("slow"),
        lambda: httpx.ConnectError("reset"),
    ],
    ids=["429", "503", "connection", "timeout", "httpx-reset"],
)
def test_transient_errors_are_retried_then_succeed(tiny: WeakModel, fault, tmp_path: Path) -> None:
    failures = {"left": 2}

    def respond(messages: list[BaseMessage]):
        if failures["left"]:
            failures["left"] -= 1
            return fault()
        return "recovered"

    strong = ScriptedChatModel(respond=respond)
    tracer = CowestTracer(f"sqlite:///{tmp_path}/t.db")
    graph = create_cowest_graph(tiny, strong, scorer=half, retry=FAST).compile()
    out = graph.invoke({"question": "q"}, config={"callbacks": [tracer]})
    assert out["answer"] == "recovered" and len(strong.calls) == 3
    [rec] = list(tracer.store.iter_runs())
    refine = [c for n in rec["nodes"] if n["node"] == "strong_refine" for c in n["calls"]]
    assert [c.get("error") is not None for c in refine] == [True, True, False], "every attempt is traced"


def test_a_draft_that_fails_for_good_is_marked_and_the_others_answer(tiny: WeakModel) -> None:
    def respond(messages: list[BaseMessage]):
        return rate_limited() if "d-poison" in messages[-1].text else "fine"

    class Poison(ScriptedChatModel):
        pass

    drafts = iter(["d-poison draft", "good draft", "good draft two"])
    weak = ScriptedChatModel(respond=lambda m: next(drafts))
    strong = Poison(respond=respond)
    graph = create_cowest_graph(weak, strong, scorer=half, num_drafts=3, retry=FAST).compile()
    out = graph.invoke({"question": "q"})
    failed = [c for c in out["candidates"] if c.get("error")]
    assert len(failed) == 1 and failed[0]["error"].startswith("RateLimitError")
    assert out["answer"] == "fine" and len(strong.calls) == 3 + 2, "3 attempts for the bad draft"


async def test_a_hang_past_the_timeout_is_cut_and_retried(tiny: WeakModel) -> None:
    def respond(messages: list[BaseMessage]):
        time.sleep(3)
        return "too late"

    strong = ScriptedChatModel(respond=respond)
    retry = RetryPolicy(initial_interval=0.01, max_interval=0.02, max_attempts=2)
    graph = create_cowest_graph(tiny, strong, scorer=half, retry=retry, call_timeout=0.2).compile()
    with pytest.raises(Exception, match="every candidate failed.*TimeoutError"):
        await graph.ainvoke({"question": "q"})
    assert len(strong.calls) == 2


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        ("", "empty"),
        ("no json here", "no score"),
        ('{"score": 99}', "outside"),
        ("I can't do that.", "refused"),
    ],
)
def test_garbage_judge_replies_never_crash_the_critique(tiny: WeakModel, reply: str, reason: str) -> None:
    critic = ScriptedChatModel(respond=lambda m: reply)
    graph = create_cowest_graph(tiny, ScriptedChatModel(respond=lambda m: "ans"), critic=critic, retry=FAST)
    out = graph.compile().invoke({"question": "q"})
    [cand] = out["candidates"]
    assert cand["score"] is None and reason in cand["score_error"] and out["answer"] == "ans"


def test_judge_outage_is_recorded_not_fatal(tiny: WeakModel) -> None:
    critic = ScriptedChatModel(respond=lambda m: server_error())
    graph = create_cowest_graph(tiny, ScriptedChatModel(respond=lambda m: "ans"), critic=critic, retry=FAST)
    out = graph.compile().invoke({"question": "q"})
    assert out["answer"] == "ans" and out["candidates"][0]["score_error"].startswith("judge call failed")
    assert len(critic.calls) == FAST.max_attempts, "a 5xx from the judge is retried, then recorded"


async def test_soak_with_random_faults_loses_no_trace(tiny: WeakModel, tmp_path: Path) -> None:
    """40 runs against a strong model that fails 35% of calls (429/503/reset/garbage)."""
    rng = random.Random(7)
    injected = {"n": 0}

    def respond(messages: list[BaseMessage]):
        roll = rng.random()
        if roll < 0.35:
            injected["n"] += 1
            return rng.choice([rate_limited, server_error, lambda: openai.APIConnectionError(request=REQ)])()
        return "the answer"

    graph = create_cowest_graph(
        tiny, ScriptedChatModel(respond=respond), scorer=half, num_drafts=2, retry=FAST
    ).compile()
    tracer = CowestTracer(f"sqlite:///{tmp_path}/soak.db")
    results = await asyncio.gather(
        *(graph.ainvoke({"question": f"q{i}"}, config={"callbacks": [tracer]}) for i in range(40)),
        return_exceptions=True,
    )
    await tracer.aflush()
    completed = sum(not isinstance(r, BaseException) for r in results)
    stored = tracer.store.count()
    print(
        f"\nsoak: runs=40 faults_injected={injected['n']} completed={completed} "
        f"failed={40 - completed} traces={stored} lost={40 - stored}"
    )
    assert injected["n"] > 10 and stored == 40 and tracer.pending == 0
    assert tracer.store.count(status="success") == completed
