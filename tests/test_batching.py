"""Dynamic batching: concurrent requests share one generate call."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from langchain_core.messages import HumanMessage

from cowest_graph.models import WeakModel
from cowest_graph.models.batching import GenerationBatcher


def recorder():
    calls: list[tuple[list[str], list[int]]] = []

    def run(prompts, ns, params):
        calls.append((list(prompts), list(ns)))
        time.sleep(0.01)
        return [[f"{p}#{i}" for i in range(n)] for p, n in zip(prompts, ns, strict=True)]

    return calls, run


def test_concurrent_requests_share_one_call_and_get_their_own_results() -> None:
    calls, run = recorder()
    batcher = GenerationBatcher(run, max_batch=16, max_wait_s=0.05)
    futures = [batcher.submit([f"p{i}"], n=2, params={"t": 1}) for i in range(5)]
    results = [f.result(timeout=5) for f in futures]
    assert results == [[[f"p{i}#0", f"p{i}#1"]] for i in range(5)]
    assert len(calls) == 1 and calls[0][1] == [2] * 5


def test_batches_respect_max_batch_and_sampling_params() -> None:
    calls, run = recorder()
    batcher = GenerationBatcher(run, max_batch=4, max_wait_s=0.05)
    futures = [batcher.submit([f"a{i}"], n=1, params={"t": 1}) for i in range(6)]
    futures += [batcher.submit(["b"], n=1, params={"t": 2})]
    for f in futures:
        f.result(timeout=5)
    assert all(sum(ns) <= 4 for _, ns in calls)
    assert all(not ({"b"} & set(ps) and len(ps) > 1) for ps, _ in calls), "other params never co-batch"
    assert sorted(p for ps, _ in calls for p in ps) == sorted([f"a{i}" for i in range(6)] + ["b"])


def test_solo_requests_run_alone_and_errors_reach_every_caller() -> None:
    calls, run = recorder()
    batcher = GenerationBatcher(run, max_wait_s=0.05)
    solo = batcher.submit(["s"], n=1, params={}, solo=True)
    other = batcher.submit(["o"], n=1, params={})
    solo.result(timeout=5)
    other.result(timeout=5)
    assert ["s"] in [ps for ps, _ in calls]

    def boom(prompts, ns, params):
        raise RuntimeError("device lost")

    failing = GenerationBatcher(boom, max_wait_s=0.02)
    futures = [failing.submit([str(i)], n=1, params={}) for i in range(3)]
    for f in futures:
        with pytest.raises(RuntimeError, match="device lost"):
            f.result(timeout=5)


def test_worker_stops_when_idle_and_restarts() -> None:
    calls, run = recorder()
    batcher = GenerationBatcher(run, max_wait_s=0.0, idle_exit_s=0.05)
    batcher.submit(["x"], n=1, params={}).result(timeout=5)
    time.sleep(0.3)
    assert batcher._worker is None
    assert batcher.submit(["y"], n=1, params={}).result(timeout=5) == [["y#0"]]


def test_real_model_concurrent_threads_share_generate(
    weak: WeakModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = weak.model_copy(update={"max_new_tokens": 4, "batch_wait_ms": 100.0})
    rows: list[int] = []
    real = model.hf_model.generate

    def spy(*args, **kwargs):
        rows.append(kwargs["input_ids"].shape[0] * kwargs["num_return_sequences"])
        return real(*args, **kwargs)

    monkeypatch.setattr(model.hf_model, "generate", spy)
    out: dict[int, str] = {}

    def ask(i: int) -> None:
        out[i] = model.invoke([HumanMessage(f"Say the number {i}.")]).text

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(out) == 6 and all(isinstance(v, str) for v in out.values())
    assert sum(rows) == 6 and len(rows) < 6, f"6 concurrent requests ran as batches {rows}"


async def test_real_model_async_requests_batch_without_threads(weak: WeakModel) -> None:
    model = weak.model_copy(update={"max_new_tokens": 4, "batch_wait_ms": 100.0})
    replies = await asyncio.gather(*(model.ainvoke(f"Name colour number {i}.") for i in range(12)))
    assert len(replies) == 12
    assert model._batcher is not None and max(model._batcher.batches) >= 6
