"""CowestTracer: every cowest run recorded, concurrent, nested, failing, killed, redacted."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langgraph.graph import START, MessagesState, StateGraph

from cowest_graph import CowestRunError, create_cowest_graph, create_cowest_tool
from cowest_graph.models import WeakModel
from cowest_graph.store import open_trace_store
from cowest_graph.testing import ScriptedChatModel
from cowest_graph.tracing import REDACTED, CowestTracer, scrub_secrets


def question_of(messages: list[BaseMessage]) -> str:
    return messages[-1].text.split("\n")[0].removeprefix("Question: ")


def echo() -> ScriptedChatModel:
    return ScriptedChatModel(respond=lambda m: f"answer to <{question_of(m)}>")


def half(q: str, a: str, r: str | None) -> float:
    return 0.5


@pytest.fixture(scope="module")
def tiny_weak(weak: WeakModel) -> WeakModel:
    """The same real SmolLM2 weights, with very short drafts for the many-run tests."""
    return weak.model_copy(update={"max_new_tokens": 3})


async def test_64_concurrent_runs_give_64_unmixed_traces(store_url: str, tiny_weak: WeakModel) -> None:
    tracer = CowestTracer(store_url)
    graph = create_cowest_graph(tiny_weak, echo(), scorer=half, num_drafts=2).compile()
    questions = [f"q{i:02d}: name a colour" for i in range(64)]
    await asyncio.gather(*(graph.ainvoke({"question": q}, config={"callbacks": [tracer]}) for q in questions))
    await tracer.aflush()
    store = tracer.store
    assert tracer.written == 64 and store.count() == 64 and store.count(status="success") == 64
    seen = set()
    for rec in store.iter_runs():
        q = rec["question"]
        seen.add(q)
        assert [n["node"] for n in rec["nodes"]] == ["prepare", "weak_draft", "strong_refine", "critique"]
        weak_calls = [c for n in rec["nodes"] for c in n["calls"] if c["role"] == "weak"]
        assert len(weak_calls) == 1 and f"Question: {q}" in weak_calls[0]["rendered_prompt"]
        assert len(rec["drafts"]) == 2
        for draft in rec["drafts"]:
            assert f"Question: {q}" in draft["rendered_prompt"], "a draft is filed under its own question"
        assert {c["answer"] for c in rec["candidates"]} == {f"answer to <{q}>"}
        assert rec["answer"] == f"answer to <{q}>" and rec["best_score"] == 0.5
        assert rec["usage"]["weak"]["output_tokens"] > 0 and rec["usage"]["strong"]["calls"] == 2
    assert seen == set(questions)


def test_trace_holds_prompts_models_scores_tokens(store_url: str, weak: WeakModel) -> None:
    tracer = CowestTracer(store_url)
    graph = create_cowest_graph(weak, echo(), scorer=half, num_drafts=2, measure_influence=True).compile()
    graph.invoke(
        {"question": "Name a planet.", "reference": "Mars"},
        config={"callbacks": [tracer], "configurable": {"thread_id": "th-1"}},
    )
    [summary] = tracer.store.list_runs(thread_id="th-1")
    rec = tracer.store.get_run(summary.run_id)
    assert rec["reference"] == "Mars" and rec["thread_id"] == "th-1" and rec["parent_run_id"] is None
    assert rec["weak_model"] == weak.model_id and rec["strong_model"] == "scripted-strong"
    draft = rec["drafts"][0]
    rendered, _ = weak.render([_to_message(m) for m in draft["prompt_messages"]])
    assert draft["rendered_prompt"] == rendered, "the recorded prompt is exactly what the weak model saw"
    assert draft["sampling"]["n"] == 2 and draft["sampling"]["temperature"] == weak.temperature
    assert "adapter_version" in draft
    assert rec["alone"]["answer"] == "answer to <Name a planet.>" and rec["alone"]["score"] == 0.5
    assert all(c["influence"] == 0.0 for c in rec["candidates"])
    calls = [c for n in rec["nodes"] for c in n["calls"]]
    assert {c["role"] for c in calls} == {"weak", "strong", "alone"}
    assert all(c["latency_s"] >= 0 and c["usage"]["input_tokens"] > 0 for c in calls)
    assert all(n["latency_s"] >= 0 for n in rec["nodes"])


def _to_message(m: dict) -> BaseMessage:
    from langchain_core.messages import SystemMessage

    return SystemMessage(m["content"]) if m["role"] == "system" else HumanMessage(m["content"])


def test_failing_run_is_recorded_with_its_error(store_url: str, tiny_weak: WeakModel) -> None:
    tracer = CowestTracer(store_url)
    broken = ScriptedChatModel(respond=lambda m: ValueError("strong model exploded"))
    graph = create_cowest_graph(tiny_weak, broken, scorer=half, num_drafts=2).compile()
    with pytest.raises(CowestRunError):
        graph.invoke({"question": "Will this fail?"}, config={"callbacks": [tracer]})
    [rec] = list(tracer.store.iter_runs())
    assert rec["status"] == "error" and "every candidate failed" in rec["error"]
    assert len(rec["drafts"]) == 2, "the drafts that completed are kept"
    assert all(c["error"] == "ValueError: strong model exploded" for c in rec["candidates"])
    critique = [n for n in rec["nodes"] if n["node"] == "critique"]
    assert critique and "CowestRunError" in critique[0]["error"]


def test_nested_in_a_parent_graph_and_behind_an_agent_tool(store_url: str, tiny_weak: WeakModel) -> None:
    from langchain.agents import create_agent

    tracer = CowestTracer(store_url)
    cowest = create_cowest_graph(tiny_weak, echo(), scorer=half).compile()
    parent = StateGraph(MessagesState)
    parent.add_node("cowest", cowest)
    parent.add_edge(START, "cowest")
    parent.compile().invoke({"messages": [HumanMessage("nested question")]}, config={"callbacks": [tracer]})

    tool = create_cowest_tool(cowest)

    def agent_model(messages: list[BaseMessage]) -> AIMessage:
        if not any(m.type == "tool" for m in messages):
            return AIMessage(
                "", tool_calls=[{"name": tool.name, "args": {"question": "tool question"}, "id": "c1"}]
            )
        return AIMessage("done")

    create_agent(ScriptedChatModel(respond=agent_model), tools=[tool]).invoke(
        {"messages": [HumanMessage("go")]}, config={"callbacks": [tracer]}
    )
    records = {r["question"]: r for r in tracer.store.iter_runs()}
    assert set(records) == {"nested question", "tool question"}
    for rec in records.values():
        assert rec["status"] == "success" and rec["parent_run_id"] is not None
        assert rec["answer"] == f"answer to <{rec['question']}>"
    assert records["nested question"]["checkpoint_ns"].startswith("cowest:")


def test_secrets_are_never_written_and_redact_applies(tmp_path: Path, tiny_weak: WeakModel) -> None:
    db = tmp_path / "t.db"
    key = "sk-test1234567890abcdefXYZ"

    def redact(rec: dict) -> dict:
        return json.loads(json.dumps(rec).replace("alice@example.com", "<email>"))

    tracer = CowestTracer(f"sqlite:///{db}", redact=redact, metadata={"api_key": key, "experiment": "e1"})
    leaky = ScriptedChatModel(respond=lambda m: f"use key {key} and mail alice@example.com")
    graph = create_cowest_graph(tiny_weak, leaky, scorer=half).compile()
    graph.invoke(
        {"question": "mail alice@example.com with Authorization: Bearer abcdefghijklmnop1234"},
        config={"callbacks": [tracer]},
    )
    tracer.store.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert key.encode() not in raw and b"abcdefghijklmnop1234" not in raw
    assert b"alice@example.com" not in raw
    rec = next(open_trace_store(f"sqlite:///{db}").iter_runs())
    assert rec["api_key"] == REDACTED and rec["experiment"] == "e1" and "<email>" in rec["question"]


def test_scrub_secrets_keeps_token_counts() -> None:
    rec = {"usage": {"input_tokens": 5}, "headers": {"Authorization": "Bearer x"}, "OPENAI_API_KEY": "k"}
    assert scrub_secrets(rec) == {
        "usage": {"input_tokens": 5},
        "headers": {"Authorization": REDACTED},
        "OPENAI_API_KEY": REDACTED,
    }


def test_a_failed_write_is_kept_and_flushed_later(tmp_path: Path, tiny_weak: WeakModel) -> None:
    tracer = CowestTracer(f"sqlite:///{tmp_path}/t.db")
    real_write = tracer.store.write_run
    failures = {"left": 1}

    def flaky_write(rec: dict) -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise OSError("disk full")
        real_write(rec)

    tracer.store.write_run = flaky_write  # type: ignore[method-assign]
    graph = create_cowest_graph(tiny_weak, echo(), scorer=half).compile()
    graph.invoke({"question": "first"}, config={"callbacks": [tracer]})
    assert tracer.pending == 1 and tracer.store.count() == 0
    graph.invoke({"question": "second"}, config={"callbacks": [tracer]})
    assert tracer.pending == 0
    assert sorted(r.question for r in tracer.store.list_runs()) == ["first", "second"]


def test_sigkill_mid_run_loses_no_finished_run(store_url: str) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).parent / "trace_writer.py"), store_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    done: list[int] = []
    deadline = time.time() + 240
    assert proc.stdout is not None
    while len(done) < 6 and time.time() < deadline:
        line = proc.stdout.readline()
        if line.startswith("DONE "):
            done.append(int(line.split()[1]))
    time.sleep(0.15)  # land the kill inside a later run
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert len(done) >= 6, "the writer did not get going"

    store = open_trace_store(store_url)
    if store_url.startswith("sqlite"):
        with store._cursor_ctx(write=False) as cur:
            cur.execute("PRAGMA integrity_check")
            assert cur.fetchone()[0] == "ok"
    records = {r["question"]: r for r in store.iter_runs()}
    assert not store.problems
    for i in done:
        rec = records[f"q{i}: name a colour"]
        assert rec["status"] == "success" and len(rec["drafts"]) == 2
        assert len(rec["candidates"]) == 2 and all(c["score"] == 0.5 for c in rec["candidates"])
        assert [n["node"] for n in rec["nodes"]] == ["prepare", "weak_draft", "strong_refine", "critique"]


def test_the_trace_records_how_many_prompt_tokens_were_cut(tmp_path: Path) -> None:
    """A question longer than the weak model's context budget is cut from the end of the last user
    message; the stored trace says by how many tokens (and nothing is cut for a short one)."""
    from cowest_graph.models import load_weak_model

    small = load_weak_model(max_new_tokens=4, max_input_tokens=80, temperature=0.0)
    graph = create_cowest_graph(small, echo(), scorer=half).compile()
    tracer = CowestTracer(f"sqlite:///{tmp_path}/cut.db")
    for question in ("word " * 300, "Name a colour."):
        graph.invoke({"question": question}, config={"callbacks": [tracer]})
    tracer.flush()
    cut = {}
    for run in tracer.store.iter_runs():
        [call] = [c for n in run["nodes"] for c in n["calls"] if c["role"] == "weak"]
        cut[run["question"].strip()[:6]] = call["truncated_tokens"]
    assert cut["Name a"] == 0
    assert cut["word w"] > 200, cut  # ~300 words, 80 tokens of budget
