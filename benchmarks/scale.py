"""The trace store and the pair builder at scale: 10k, 100k and 300k runs, SQLite and PostgreSQL.

Every run is the record of a real trace: the real SmolLM2 weak model writes k = 4 drafts of up to
64 tokens for one question, a scripted strong model refines them and answers alone, and the real
`CowestTracer` records it (about 20 KB of JSON with its node records). Synthetic runs are that
record with a new run id, start time, question (each question is asked in two runs, so every
prompt has 8 drafts) and drafts (one of 6 wordings per question, scored by its wording).

At each size the store grows to the size, and each step is timed:
- write, 1 writer: the runs up to the size, less the last 8 x 1,000 (one process, one transaction per
  run, as the tracer writes);
- write, 8 writers: the last 8 x 1,000 runs from 8 processes at once (`--per-writer`);
- iterate: reading every run (`TraceStore.iter_runs`), in a fresh process (peak RSS is its own);
- pairs: `build_preference_pairs` from the store URL, in a fresh process.
Goal: runs/s at the largest size >= 0.8 x runs/s at 10k for every step; 300k runs give pairs in
<= 5 minutes with peak RSS <= 1.5 GB. The 10M-run time is projected from the largest size.

    python -m benchmarks.scale [--sizes 10000,100000,300000] [--backends sqlite,postgresql]
        [--postgres URL] [--workdir DIR]

Without `--postgres`, a throwaway server is started with scripts/postgres.sh. Writes
benchmarks/results/scale.json and scale.png.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import random
import resource
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS, print_table, save, step

MULTI_WRITERS = 8
QUESTION = (
    "Today is Tuesday. A Quillfeather Labs expense report filed now is due on the next reporting "
    "day. How many days remain until it is due?"
)


# -- one real trace ------------------------------------------------------------------------
def real_template(path: Path) -> dict[str, Any]:
    """Record one real trace (cached in `path`) and return its record."""
    if path.exists():
        return json.loads(path.read_text())
    from cowest_graph import create_cowest_graph
    from cowest_graph.collect import acollect
    from cowest_graph.critique import answer_match
    from cowest_graph.data import Example
    from cowest_graph.loop import LoopConfig
    from cowest_graph.models import load_weak_model
    from cowest_graph.prompts import CowestPrompts
    from cowest_graph.testing import ScriptedChatModel
    from cowest_graph.tracing import CowestTracer

    demo = LoopConfig()
    prompts = CowestPrompts(weak_system=demo.weak_system, weak_user="Question: {question}").with_format(
        demo.answer_format
    )
    weak = load_weak_model(max_new_tokens=64, temperature=1.0, seed=0)
    strong = ScriptedChatModel(respond=lambda m: "Working: Thursday - Tuesday = 2 days\nAnswer: 2")
    graph = create_cowest_graph(
        weak, strong, scorer=answer_match, num_drafts=4, prompts=prompts, measure_influence=True
    ).compile()
    db = path.with_suffix(".db")
    tracer = CowestTracer(f"sqlite:///{db}")

    async def one() -> None:
        await acollect(graph, [Example("template", QUESTION, "2")], tracer, progress=False)
        await tracer.aflush()

    asyncio.run(one())
    record = next(iter(tracer.store.iter_runs()))
    tracer.store.close()
    db.unlink()
    path.write_text(json.dumps(record))
    return record


class Synth:
    """Synthetic runs from the real record: new ids, question and drafts everywhere they occur."""

    def __init__(self, template: dict[str, Any]) -> None:
        text = json.dumps(template)
        self.drafts = [d["text"] for d in template["drafts"]]
        marks = [(template["run_id"], "@@RUN@@"), (template["question"], "@@Q@@")]
        marks += [(d, f"@@D{i}@@") for i, d in enumerate(self.drafts)]
        for original, mark in sorted(marks, key=lambda m: -len(m[0])):
            text = text.replace(json.dumps(original)[1:-1], mark)
        self.text = text
        self.size = len(text)

    def record(self, i: int, start: float) -> dict[str, Any]:
        qid = i // 2
        rng = random.Random(i)
        variants = [rng.randrange(6) for _ in self.drafts]
        text = self.text.replace("@@RUN@@", f"scale-{i:09d}")
        text = text.replace("@@Q@@", _esc(f"{QUESTION} (case {qid})"))
        for j, v in enumerate(variants):
            text = text.replace(f"@@D{j}@@", _esc(f"{self.drafts[j]} [rule {qid}, wording {v}]"))
        rec = json.loads(text)
        rec["started_at"] = start + i * 1e-3
        alone = float(rng.random() < 0.3)
        rec["alone"]["score"] = alone
        for cand, v in zip(rec["candidates"], variants, strict=True):
            cand["score"] = 1.0 if v < 2 else 0.0
            cand["influence"] = cand["score"] - alone
        rec["best_score"] = max(c["score"] for c in rec["candidates"])
        return rec


def _esc(s: str) -> str:
    return json.dumps(s)[1:-1]


# -- steps -----------------------------------------------------------------------------------
def _rss_mb() -> float:
    """This process's peak resident set (VmHWM: unlike ru_maxrss, not carried over from the
    parent's memory across fork and exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _write(url: str, synth: Synth, first: int, n: int, start: float) -> float:
    """Write runs first..first+n-1 from this process; seconds spent writing (not generating)."""
    from cowest_graph.store import open_trace_store

    store = open_trace_store(url)
    spent = 0.0
    for lo in range(first, first + n, 1000):
        batch = [synth.record(i, start) for i in range(lo, min(lo + 1000, first + n))]
        t = time.perf_counter()
        for rec in batch:
            store.write_run(rec)
        spent += time.perf_counter() - t
    store.close()
    return spent


def _writer(url: str, template: dict[str, Any], first: int, n: int, start: float, ready: Any) -> None:
    from cowest_graph.store import open_trace_store

    synth = Synth(template)
    batch = [synth.record(i, start) for i in range(first, first + n)]
    store = open_trace_store(url)
    ready.wait()  # all writers hold their runs and the parent's clock starts
    for rec in batch:
        store.write_run(rec)
    store.close()


def _multi_write(url: str, template: dict[str, Any], first: int, n: int, start: float) -> float:
    ctx = mp.get_context("spawn")
    ready = ctx.Barrier(MULTI_WRITERS + 1)
    procs = [
        ctx.Process(target=_writer, args=(url, template, first + w * n, n, start, ready))
        for w in range(MULTI_WRITERS)
    ]
    for p in procs:
        p.start()
    ready.wait()
    t = time.perf_counter()
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise RuntimeError(f"a writer failed with exit code {p.exitcode}")
    return time.perf_counter() - t


def _measure(kind: str, url: str, out: Any) -> None:
    from cowest_graph.feedback import build_preference_pairs
    from cowest_graph.store import open_trace_store

    t = time.perf_counter()
    if kind == "iterate":
        store = open_trace_store(url, create=False)
        n = sum(1 for _ in store.iter_runs())
        store.close()
        extra: dict[str, Any] = {"runs": n}
    else:
        pairs = build_preference_pairs(url, min_margin=0.5, eval_fraction=0.1)
        extra = {"pairs": pairs.report.pairs, "prompts": pairs.report.prompts, "runs": pairs.report.runs}
    out.put({"seconds": time.perf_counter() - t, "peak_rss_mb": _rss_mb(), **extra})


def _in_fresh_process(kind: str, url: str) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=_measure, args=(kind, url, out))
    proc.start()
    result = out.get()
    proc.join()
    return result


def _postgres(workdir: Path) -> tuple[str, Any]:
    env = {**os.environ, "COWEST_PG_DIR": str(workdir / "pg"), "COWEST_PG_PORT": "54349"}
    script = Path(__file__).resolve().parent.parent / "scripts" / "postgres.sh"
    url = subprocess.run(["bash", str(script), "start"], env=env, check=True, capture_output=True, text=True)
    return url.stdout.strip(), lambda: subprocess.run(["bash", str(script), "stop"], env=env, check=False)


def _store_bytes(backend: str, url: str, db: Path) -> int:
    if backend == "sqlite":
        return sum(p.stat().st_size for p in db.parent.glob(db.name + "*"))
    from cowest_graph.store import open_trace_store

    store = open_trace_store(url)
    with store._cursor_ctx(write=False) as cur:
        cur.execute("SELECT pg_database_size(current_database())")
        size = int(cur.fetchone()[0])
    store.close()
    return size


def run_backend(
    backend: str, url: str, sizes: list[int], synth: Synth, template: dict, db: Path, per_writer: int
) -> list[dict]:
    rows = []
    multi = MULTI_WRITERS * per_writer
    written = 0
    start = 1.7e9
    for size in sizes:
        single = size - written - multi
        if single <= 0:
            raise ValueError(f"size {size} leaves no runs for the single writer")
        step(f"{backend} {size:,}: writing {single:,} runs with 1 writer")
        t1 = _write(url, synth, written, single, start)
        written += single
        step(f"{backend} {size:,}: writing {multi:,} runs with {MULTI_WRITERS} writers")
        t8 = _multi_write(url, template, written, per_writer, start)
        written += multi
        step(f"{backend} {size:,}: iterating")
        it = _in_fresh_process("iterate", url)
        if it["runs"] != size:
            raise RuntimeError(f"iterated {it['runs']} runs, wrote {size}")
        step(f"{backend} {size:,}: pairs")
        pr = _in_fresh_process("pairs", url)
        shutil.rmtree(os.environ["HF_DATASETS_CACHE"], ignore_errors=True)  # the pairs' Arrow files
        rows.append(
            {
                "backend": backend,
                "runs": size,
                "store_gb": _store_bytes(backend, url, db) / 1e9,
                "write_1_runs_s": single / t1,
                "write_8_runs_s": multi / t8,
                "iterate_runs_s": size / it["seconds"],
                "iterate_s": it["seconds"],
                "iterate_peak_rss_mb": it["peak_rss_mb"],
                "pairs_runs_s": size / pr["seconds"],
                "pairs_s": pr["seconds"],
                "pairs_peak_rss_mb": pr["peak_rss_mb"],
                "pairs": pr["pairs"],
            }
        )
        step(f"{backend} {size:,}: {json.dumps(rows[-1])}")
    return rows


STEPS = ("write_1_runs_s", "write_8_runs_s", "iterate_runs_s", "pairs_runs_s")


def summarise(rows: list[dict]) -> dict[str, Any]:
    """Linearity ratios (largest size / smallest) per backend and step, and the 10M projection."""
    out: dict[str, Any] = {}
    for backend in sorted({r["backend"] for r in rows}):
        mine = sorted((r for r in rows if r["backend"] == backend), key=lambda r: r["runs"])
        small, big = mine[0], mine[-1]
        ratios = {s: big[s] / small[s] for s in STEPS}
        out[backend] = {
            "sizes": [small["runs"], big["runs"]],
            "ratio_largest_to_smallest": ratios,
            "linear": all(v >= 0.8 for v in ratios.values()),
            "pairs_s_at_largest": big["pairs_s"],
            "pairs_peak_rss_mb_at_largest": big["pairs_peak_rss_mb"],
            "projected_10M_hours": {
                "write_1": 1e7 / big["write_1_runs_s"] / 3600,
                "iterate": 1e7 / big["iterate_runs_s"] / 3600,
                "pairs": 1e7 / big["pairs_runs_s"] / 3600,
            },
        }
    return out


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(STEPS), figsize=(14, 3.6), sharex=True)
    for ax, key in zip(axes, STEPS, strict=True):
        for backend, style in (("sqlite", "o-"), ("postgresql", "s--")):
            mine = sorted((r for r in rows if r["backend"] == backend), key=lambda r: r["runs"])
            if mine:
                ax.plot([r["runs"] for r in mine], [r[key] for r in mine], style, label=backend)
        ax.set_xscale("log")
        ax.set_ylim(bottom=0)
        ax.set_title(key.replace("_runs_s", "").replace("_", " ") + " (runs/s)")
        ax.set_xlabel("runs in the store")
    axes[0].legend()
    fig.suptitle("Trace store and pair builder: runs/s as the store grows (flat = linear)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000,100000,300000")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--postgres", default=None, help="A server URL (else one is started).")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/cowest-scale"))
    parser.add_argument("--per-writer", type=int, default=1000, help="Runs each of the 8 writers writes.")
    parser.add_argument("--name", default="scale", help="Result file name (scale.json / scale.png).")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    args.workdir.mkdir(parents=True, exist_ok=True)
    os.environ["HF_DATASETS_CACHE"] = str(args.workdir / "hf-datasets")
    template = real_template(args.workdir / "template.json")
    synth = Synth(template)
    step(f"real record: {synth.size:,} bytes of JSON, {len(template['drafts'])} drafts")
    rows: list[dict] = []
    for backend in args.backends.split(","):
        stop = None
        db = args.workdir / "scale.db"
        if backend == "sqlite":
            for p in args.workdir.glob("scale.db*"):
                p.unlink()
            url = f"sqlite:///{db}"
        else:
            url, stop = (args.postgres, None) if args.postgres else _postgres(args.workdir)
        try:
            rows += run_backend(backend, url, sizes, synth, template, db, args.per_writer)
        finally:
            if stop is not None:
                stop()
        if backend == "sqlite":
            for p in args.workdir.glob("scale.db*"):
                p.unlink()
    summary = summarise(rows)
    print_table("trace store and pairs at scale (runs/s)", rows)
    print(json.dumps(summary, indent=2))
    save(args.name, {"record_bytes": synth.size, "sizes": sizes, "rows": rows, "summary": summary})
    plot(rows, RESULTS / f"{args.name}.png")


if __name__ == "__main__":
    main()
