"""Resumable trace collection over a dataset."""

from __future__ import annotations

import asyncio
from pathlib import Path

from cowest_graph import create_cowest_graph
from cowest_graph.collect import acollect
from cowest_graph.critique import contains_match
from cowest_graph.data import Example
from cowest_graph.models import WeakModel
from cowest_graph.testing import ScriptedChatModel
from cowest_graph.tracing import CowestTracer


def test_collection_resumes_without_duplicates(tmp_path: Path, weak: WeakModel) -> None:
    tiny = weak.model_copy(update={"max_new_tokens": 3})
    calls = {"n": 0}

    def strong(messages):
        calls["n"] += 1
        text = messages[-1].text
        return RuntimeError("boom") if "q3" in text else "answer: blue"

    graph = create_cowest_graph(tiny, ScriptedChatModel(respond=strong), scorer=contains_match).compile()
    examples = [Example(f"id{i}", f"q{i}: what colour?", "blue") for i in range(6)]
    url = f"sqlite:///{tmp_path}/t.db"

    first = asyncio.run(acollect(graph, examples[:4], CowestTracer(url), concurrency=2, progress=False))
    assert (first.succeeded, first.failed, first.skipped) == (3, 1, 0)
    assert "RuntimeError: boom" in first.errors["id3"] or "every candidate failed" in first.errors["id3"]

    tracer = CowestTracer(url)
    second = asyncio.run(acollect(graph, examples, tracer, concurrency=2, progress=False))
    assert (second.skipped, second.succeeded, second.failed) == (3, 2, 1), "failed id3 is retried"
    ids = [r["example_id"] for r in tracer.store.iter_runs(status="success")]
    assert sorted(ids) == ["id0", "id1", "id2", "id4", "id5"], "no duplicates"
    assert tracer.store.count(status="error") == 2
