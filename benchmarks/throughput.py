"""Drafting throughput of the weak node on both backends (transformers, llama.cpp), in one run.

    python -m benchmarks.throughput [--tokens 48] [--repeats 3]

Ratios, all measured in one run (medians of interleaved repeats, fixed-length generation):
  * weak node, k drafts: Hugging Face / llama.cpp time (goal >= 4), and k drafts / 1 draft per
    backend (llama.cpp goal <= 1.5);
  * the HF weak node vs raw `model.generate` on the same batch (goal <= 1.1x);
  * 16 concurrent graph runs vs 16 sequential runs per backend, and llama.cpp's concurrent drafts/s
    vs a raw batched HF generate of the same 16 prompts (goal >= 2);
  * graph wall time vs the time inside model calls, with the batching queue's wait counted as
    model time and as overhead (goal <= 1.05).
Tracing overhead has its own benchmark (benchmarks/tracing.py). Writes
benchmarks/results/throughput.json and throughput.png (drafts/s against concurrency).
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

    n_tok, k = args.tokens, args.k
    step("loading the weak model on both backends")
    fixed = {"max_new_tokens": n_tok, "min_new_tokens": n_tok, "temperature": 0.8}
    backends = {
        "hf": load_weak_model(backend="hf", **fixed),
        "llama.cpp": load_weak_model(backend="llama.cpp", **fixed),
    }
    hf = backends["hf"]
    prompts = CowestPrompts()
    questions = [f"Question {i}: what should a new employee know about rule {i}?" for i in range(16)]
    messages = [prompts.weak_messages(q) for q in questions]
    rendered = [hf.render(m)[0] for m in messages]
    tok = hf.tokenizer

    def raw(batch_prompts: list[str], n: int) -> None:
        enc = tok(
            batch_prompts, return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False
        )
        with torch.inference_mode():
            hf.hf_model.generate(
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
    # 1. k drafts vs 1 draft per backend, and HF node vs raw generate; interleaved repeats.
    samples: dict[str, list[float]] = {}
    for i in range(args.repeats):
        step(f"one prompt, 1 and {k} drafts, both backends: repeat {i + 1}/{args.repeats}")
        samples.setdefault("raw_k", []).append(timed(lambda: raw(rendered[:1], k), 1))
        for name, weak in backends.items():
            samples.setdefault(f"{name}_1", []).append(
                timed(lambda w=weak: w.generate([messages[0]], n=1), 1)
            )
            samples.setdefault(f"{name}_k", []).append(
                timed(lambda w=weak: w.generate([messages[0]], n=k), 1)
            )
    med = {key: statistics.median(v) for key, v in samples.items()}
    rows.append(
        {
            "measure": f"weak node, {k} drafts: hf / llama.cpp time (goal >= 4)",
            "ratio": med["hf_k"] / med["llama.cpp_k"],
        }
    )
    rows.append(
        {"measure": "weak node, 1 draft: hf / llama.cpp time", "ratio": med["hf_1"] / med["llama.cpp_1"]}
    )
    rows.append(
        {
            "measure": f"llama.cpp: {k} drafts / 1 draft (time, goal <= 1.5)",
            "ratio": med["llama.cpp_k"] / med["llama.cpp_1"],
        }
    )
    rows.append({"measure": f"hf: {k} drafts / 1 draft (time)", "ratio": med["hf_k"] / med["hf_1"]})
    rows.append(
        {
            "measure": f"hf weak node / raw generate, {k} drafts (time, goal <= 1.1)",
            "ratio": med["hf_k"] / med["raw_k"],
        }
    )

    # 2. concurrency: drafts/s of 16 graph runs (1 draft each) at 1..16 in flight, per backend.
    strong = ScriptedChatModel(respond=lambda m: "an answer")
    graphs = {
        name: create_cowest_graph(weak, strong, scorer=lambda q, a, r: 0.5, num_drafts=1).compile()
        for name, weak in backends.items()
    }

    async def concurrent(graph, c: int) -> None:  # noqa: ANN001
        gate = asyncio.Semaphore(c)

        async def one(q: str) -> None:
            async with gate:
                await graph.ainvoke({"question": q})

        await asyncio.gather(*(one(q) for q in questions))

    drafts = len(questions)
    curves: dict[str, dict[str, float]] = {}
    for name, graph in graphs.items():
        step(f"{name}: 16 sequential graph runs")
        seq = timed(lambda g=graph: [g.invoke({"question": q}) for q in questions], 1)
        curve = {"sequential": drafts / seq}
        for c in (1, 2, 4, 8, 16):
            step(f"{name}: 16 graph runs, {c} at a time")
            curve[str(c)] = drafts / timed(lambda g=graph, c=c: asyncio.run(concurrent(g, c)), 1)
        curves[name] = curve
    step("raw batched generate of the 16 prompts (hf)")
    raw_16 = drafts / timed(lambda: raw(rendered, 1), max(1, args.repeats - 1))
    for name, curve in curves.items():
        rows.append(
            {
                "measure": f"{name}: 16 concurrent / 16 sequential runs (drafts/s)",
                "ratio": curve["16"] / curve["sequential"],
            }
        )
    rows.append(
        {
            "measure": "hf: 16 concurrent runs / raw batched generate of 16 (drafts/s)",
            "ratio": curves["hf"]["16"] / raw_16,
        }
    )
    rows.append(
        {
            "measure": "llama.cpp 16 concurrent runs / hf raw batched generate of 16 (drafts/s, goal >= 2)",
            "ratio": curves["llama.cpp"]["16"] / raw_16,
        }
    )

    # 3. graph overhead: wall time vs time inside model calls (from the traces), sequential runs.
    for name, graph in graphs.items():
        step(f"{name}: graph overhead")
        db = RESULTS / f".throughput-{name}.db"
        tracer = CowestTracer(f"sqlite:///{db}")
        start = time.perf_counter()
        for q in questions[:6]:
            graph.invoke({"question": q}, config={"callbacks": [tracer]})
        wall = time.perf_counter() - start
        tracer.flush()
        calls = [c for r in tracer.store.iter_runs() for n in r["nodes"] for c in n["calls"]]
        inside = sum(c["latency_s"] for c in calls)
        waited = sum(c.get("queue_wait_s") or 0.0 for c in calls)
        tracer.store.close()
        Path(db).unlink(missing_ok=True)
        rows.append(
            {
                "measure": f"{name}: graph wall / model-call time, queue wait as model time (goal <= 1.05)",
                "ratio": wall / inside,
            }
        )
        rows.append(
            {
                "measure": f"{name}: graph wall / model-call time, queue wait as overhead",
                "ratio": wall / (inside - waited),
            }
        )

    threads = torch.get_num_threads()
    print_table(f"Weak-node drafting throughput ({n_tok} tokens, SmolLM2-135M, {threads} threads)", rows)
    table = [{"concurrency": c, **{f"{n} drafts/s": curves[n][c] for n in curves}} for c in curves["hf"]]
    print_table("drafts/s against concurrency (16 runs)", table)
    path = save(
        "throughput",
        {
            "ratios": rows,
            "curves": curves,
            "seconds": med,
            "raw_batched_16_drafts_per_s": raw_16,
            "tokens": n_tok,
            "k": k,
            "llama_cpp_precision": backends["llama.cpp"].gguf_path,
        },
    )
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 3.5))
        cs = [1, 2, 4, 8, 16]
        for name, style in (("llama.cpp", "o-"), ("hf", "s-")):
            ax.plot(cs, [curves[name][str(c)] for c in cs], style, label=f"cowest graph, {name} backend")
            ax.axhline(curves[name]["sequential"], linestyle=":", color="gray")
        ax.axhline(raw_16, color="black", linestyle="--", label="raw batched HF generate (16)")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("concurrent graph runs")
        ax.set_ylabel("drafts / s (48 tokens each)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(RESULTS / "throughput.png", dpi=120)
    except ImportError:
        pass
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
