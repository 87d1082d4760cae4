"""Tracing overhead (runs with the tracer / without, same models, same process) and trace-store
write throughput (node records per second) on SQLite and PostgreSQL.

    python -m benchmarks.tracing [--runs 200] [--postgres URL]

Writes benchmarks/results/tracing.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.common import print_table, save, step


def _graph(weak, strong):  # noqa: ANN001, ANN202
    from cowest_graph import create_cowest_graph

    return create_cowest_graph(
        weak, strong, scorer=lambda q, a, r: 0.5, num_drafts=2, measure_influence=True
    ).compile()


async def _timed(graph, n: int, callbacks: list) -> float:  # noqa: ANN001
    start = time.perf_counter()
    for i in range(n):
        await graph.ainvoke({"question": f"question {i}?"}, config={"callbacks": callbacks})
    return time.perf_counter() - start


def overhead(
    label: str,
    weak,  # noqa: ANN001
    strong,  # noqa: ANN001
    runs: int,
    url: str,
    *,
    goal_margin: float = 0.02,
    min_repeats: int = 6,
    max_repeats: int = 40,
) -> dict:
    """Traced / untraced time, measured until it is resolvable at the goal.

    Each repeat times one untraced and one traced batch of `runs` runs, in alternating order, with
    the same sampling seed (with fixed-length generation both batches do the same work), so drift
    and order hit both alike. Repeats go on until the 95% bootstrap interval of the mean ratio is
    narrower than `goal_margin` (the goal is <= 1 + goal_margin), at least `min_repeats`.
    """
    import torch

    from cowest_graph.evaluate import bootstrap_ci
    from cowest_graph.tracing import CowestTracer

    graph = _graph(weak, strong)
    tracer = CowestTracer(url)
    asyncio.run(_timed(graph, 2, [tracer]))  # warm up
    ratios, off_times, on_times = [], [], []
    low = high = float("nan")
    for i in range(max_repeats):
        timings = {}
        for traced in (False, True) if i % 2 == 0 else (True, False):
            torch.manual_seed(1000 + i)
            timings[traced] = asyncio.run(_timed(graph, runs, [tracer] if traced else []))
        off_times.append(timings[False])
        on_times.append(timings[True])
        ratios.append(timings[True] / timings[False])
        if i + 1 >= min_repeats:
            low, high = bootstrap_ci(ratios)
            if high - low < goal_margin:
                break
    return {
        "models": label,
        "runs_per_batch": runs,
        "repeats": len(ratios),
        "ms_per_run_untraced": 1000 * statistics.median(off_times) / runs,
        "ms_per_run_traced": 1000 * statistics.median(on_times) / runs,
        "overhead_ratio": statistics.mean(ratios),
        "ci_low": low,
        "ci_high": high,
    }


def write_throughput(url: str, label: str, runs: int) -> dict:
    """Write realistic records (5 node records each) straight to the store."""
    from cowest_graph.store import open_trace_store

    store = open_trace_store(url)
    node = {
        "node": "strong_refine",
        "round": 1,
        "latency_s": 0.1,
        "started_at": 0.0,
        "calls": [
            {"role": "strong", "messages": [{"role": "human", "content": "x" * 400}], "outputs": ["y" * 300]}
        ]
        * 4,
    }
    records = [
        {
            "run_id": f"bench-{label}-{time.time_ns()}-{i}",
            "started_at": time.time(),
            "status": "success",
            "question": "q" * 80,
            "nodes": [node] * 5,
            "candidates": [{"id": f"r1d{j}", "answer": "a" * 200, "score": 0.5} for j in range(4)],
        }
        for i in range(runs)
    ]
    start = time.perf_counter()
    for rec in records:
        store.write_run(rec)
    elapsed = time.perf_counter() - start
    store.close()
    return {
        "backend": label,
        "runs": runs,
        "runs_per_s": runs / elapsed,
        "node_records_per_s": 5 * runs / elapsed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=100, help="runs per timed batch (scripted models)")
    parser.add_argument("--real-runs", type=int, default=6, help="runs per timed batch (real weak model)")
    parser.add_argument("--postgres", default=os.environ.get("COWEST_TEST_POSTGRES_URL"))
    args = parser.parse_args()

    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    from cowest_graph import load_weak_model
    from cowest_graph.testing import ScriptedChatModel

    tmp = Path(tempfile.mkdtemp())
    strong = ScriptedChatModel(respond=lambda m: "an answer built on the draft")
    scripted_weak = FakeListChatModel(responses=["a scripted draft"] * 10)
    step("tracing overhead with scripted models")
    rows = [
        overhead(
            "scripted weak + scripted strong", scripted_weak, strong, args.runs, f"sqlite:///{tmp}/o1.db"
        )
    ]
    step("tracing overhead with the real weak model")
    # Fixed length (min = max new tokens) and a seed per repeat: sampling noise is not overhead.
    real_weak = load_weak_model(max_new_tokens=16, min_new_tokens=16, temperature=0.7)
    rows.append(
        overhead(
            "real SmolLM2 weak + scripted strong", real_weak, strong, args.real_runs, f"sqlite:///{tmp}/o2.db"
        )
    )
    print_table("Tracing overhead (traced / untraced: mean of interleaved pairs, 95% bootstrap CI)", rows)

    step("trace store writes")
    writes = [write_throughput(f"sqlite:///{tmp}/w.db", "sqlite", 300)]
    if args.postgres:
        writes.append(write_throughput(args.postgres, "postgresql", 300))
    print_table("Trace store write throughput (one transaction per run, 5 node records each)", writes)
    path = save("tracing", {"overhead": rows, "store_writes": writes, "goal_overhead_ratio": 1.02})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
