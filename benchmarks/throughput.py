"""Drafting throughput of the weak node, measured against raw batched `generate` on this machine.

    python -m benchmarks.throughput [--tokens 48] [--repeats 3]

Ratios, all measured in one run (median of repeats, fixed-length generation):
  * k drafts vs one draft (one batched generate for the k drafts);
  * the weak node (WeakModel) vs raw `model.generate` on the same batch (goal <= 1.1x);
  * 16 concurrent graph runs vs 16 sequential runs (drafts/s, goal >= 3x), and vs a raw batched
    generate of the same 16 prompts (goal >= 80% of raw);
  * graph wall time vs the time spent inside model calls (overhead, goal <= 5%);
  * tracing on vs off.
Writes benchmarks/results/throughput.json and throughput.png (drafts/s against concurrency).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from pathlib import Path

from benchmarks.common import RESULTS, print_table, save, step


def timed(fn, repeats: int) -> float:  # noqa: ANN001
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokens", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--k", type=int, default=4)
    args = parser.parse_args()

    import torch

    from cowest_graph import create_cowest_graph
    from cowest_graph.models import load_weak_model
    from cowest_graph.prompts import CowestPrompts
    from cowest_graph.testing import ScriptedChatModel
    from cowest_graph.tracing import CowestTracer

    n_tok = args.tokens
    step("loading the weak model")
    weak = load_weak_model(max_new_tokens=n_tok, min_new_tokens=n_tok, temperature=0.8)
    prompts = CowestPrompts()
    questions = [f"Question {i}: what should a new employee know about rule {i}?" for i in range(16)]
    rendered = [weak.render(prompts.weak_messages(q))[0] for q in questions]
    tok = weak.tokenizer

    def raw(batch_prompts: list[str], n: int) -> None:
        enc = tok(
            batch_prompts, return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False
        )
        with torch.inference_mode():
            weak.hf_model.generate(
                **enc,
                max_new_tokens=n_tok,
                min_new_tokens=n_tok,
                do_sample=True,
                temperature=0.8,
                top_p=0.95,
                num_return_sequences=n,
                pad_token_id=tok.eos_token_id,
            )

    rows = []
    # 1-2: k drafts vs 1 draft, weak node vs raw generate.
    # Interleaved: each repeat times all four once, so machine drift hits them alike.
    samples: dict[str, list[float]] = {"raw_1": [], "raw_k": [], "node_1": [], "node_k": []}
    for i in range(args.repeats):
        step(f"k drafts vs 1, node vs raw generate: repeat {i + 1}/{args.repeats}")
        samples["raw_1"].append(timed(lambda: raw(rendered[:1], 1), 1))
        samples["node_1"].append(timed(lambda: weak.generate([prompts.weak_messages(questions[0])], n=1), 1))
        samples["raw_k"].append(timed(lambda: raw(rendered[:1], args.k), 1))
        samples["node_k"].append(
            timed(lambda: weak.generate([prompts.weak_messages(questions[0])], n=args.k), 1)
        )
    raw_1, raw_k, node_1, node_k = (
        statistics.median(samples[k]) for k in ("raw_1", "raw_k", "node_1", "node_k")
    )
    rows.append({"measure": f"raw generate: {args.k} drafts / 1 draft (time)", "ratio": raw_k / raw_1})
    rows.append({"measure": f"weak node: {args.k} drafts / 1 draft (time)", "ratio": node_k / node_1})
    rows.append(
        {"measure": f"weak node / raw generate, {args.k} drafts (time, goal <= 1.1)", "ratio": node_k / raw_k}
    )

    # 3: concurrent vs sequential graph runs, and vs raw batched generate of the same prompts.
    strong = ScriptedChatModel(respond=lambda m: "an answer")
    graph = create_cowest_graph(weak, strong, scorer=lambda q, a, r: 0.5, num_drafts=1).compile()

    def sequential() -> None:
        for q in questions:
            graph.invoke({"question": q})

    async def concurrent(c: int) -> None:
        gate = asyncio.Semaphore(c)

        async def one(q: str) -> None:
            async with gate:
                await graph.ainvoke({"question": q})

        await asyncio.gather(*(one(q) for q in questions))

    step("16 sequential graph runs")
    seq = timed(sequential, 1)
    per_c = {}
    for c in (1, 2, 4, 8):
        step(f"16 graph runs, {c} at a time")
        per_c[c] = timed(lambda c=c: asyncio.run(concurrent(c)), max(1, args.repeats - 1))
    # The headline pair, interleaved: 16 concurrent runs and a raw batched generate of the same prompts.
    conc_16, raw_16s = [], []
    for i in range(args.repeats):
        step(f"16 concurrent runs vs raw batched generate: repeat {i + 1}/{args.repeats}")
        conc_16.append(timed(lambda: asyncio.run(concurrent(16)), 1))
        raw_16s.append(timed(lambda: raw(rendered, 1), 1))
    per_c[16], raw_16 = statistics.median(conc_16), statistics.median(raw_16s)
    drafts = len(questions)
    rows.append(
        {"measure": "16 concurrent / 16 sequential runs (drafts/s, goal >= 3)", "ratio": seq / per_c[16]}
    )
    rows.append(
        {
            "measure": "16 concurrent runs / raw batched generate of 16 (drafts/s, goal >= 0.8)",
            "ratio": raw_16 / per_c[16],
        }
    )
    rows.append({"measure": "raw batched 16 / raw one-by-one 16 (drafts/s)", "ratio": 16 * raw_1 / raw_16})

    # 4: graph overhead: wall time vs time inside model calls, from the traces.
    step("graph overhead and tracing overhead")
    tracer = CowestTracer(f"sqlite:///{RESULTS}/.throughput-traces.db")
    start = time.perf_counter()
    for q in questions[:6]:
        graph.invoke({"question": q}, config={"callbacks": [tracer]})
    wall = time.perf_counter() - start
    inside = sum(c["latency_s"] for r in tracer.store.iter_runs() for n in r["nodes"] for c in n["calls"])
    tracer.store.close()
    Path(f"{RESULTS}/.throughput-traces.db").unlink(missing_ok=True)
    rows.append(
        {"measure": "graph wall time / time inside model calls (goal <= 1.05)", "ratio": wall / inside}
    )

    # 5: tracing on vs off (sequential runs, same graph).
    off = timed(lambda: [graph.invoke({"question": q}) for q in questions[:6]], 1)
    tr = CowestTracer(f"sqlite:///{RESULTS}/.throughput-traces2.db")
    on = timed(lambda: [graph.invoke({"question": q}, config={"callbacks": [tr]}) for q in questions[:6]], 1)
    tr.store.close()
    Path(f"{RESULTS}/.throughput-traces2.db").unlink(missing_ok=True)
    rows.append({"measure": "tracing on / off (time)", "ratio": on / off})

    print_table(
        f"Weak-node drafting throughput ({n_tok} tokens, SmolLM2-135M, {torch.get_num_threads()} threads)",
        rows,
    )
    curve = [{"concurrency": c, "drafts_per_s": drafts / t} for c, t in per_c.items()]
    curve.insert(0, {"concurrency": "sequential", "drafts_per_s": drafts / seq})
    print_table("drafts/s against concurrency (16 runs)", curve)
    path = save(
        "throughput",
        {
            "ratios": rows,
            "curve": curve,
            "raw_batched_16_drafts_per_s": drafts / raw_16,
            "tokens": n_tok,
            "k": args.k,
        },
    )
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 3.5))
        cs = list(per_c)
        ax.plot(cs, [drafts / per_c[c] for c in cs], marker="o", label="cowest graph (batching queue)")
        ax.axhline(drafts / raw_16, color="gray", linestyle="--", label="raw batched generate (16)")
        ax.axhline(drafts / seq, color="red", linestyle=":", label="sequential runs")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("concurrent runs")
        ax.set_ylabel("drafts / s")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(RESULTS / "throughput.png", dpi=120)
    except ImportError:
        pass
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
