"""Equivalence of the two weak backends (transformers, llama.cpp) on real held-out questions.

    python -m benchmarks.backends [--n-ethics 200] [--n-sft 480] [--skip-demo] [--skip-ethics]

The same SFT adapter (trained once, on transformers) drafts under both backends; the real strong
model (Qwen2.5-Coder-1.5B on llama.cpp's server) refines. Greedy drafts, one per question, so the
two backends see the same prompts and only their arithmetic differs. Per task and backend:
weak alone and CoWest accuracy with 95% bootstrap intervals, the paired difference
llama.cpp - hf (McNemar), the share of questions whose greedy draft is the same text, and the
wall time of each condition.
  * the demo domain (examples/data/quillfeather): SFT with the demo's recipe, its 48 held-out
    questions, the `Answer:` scorer;
  * ETHICS commonsense: SFT on `--n-sft` train-side rows, `--n-ethics` report-side rows (seed 0
    draw of benchmarks/quality.py), label scorer.
Writes benchmarks/results/backends.json.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import print_table, save, step


async def compare(
    task: str,
    sft_dir: Path,
    questions: list[Any],
    strong: Any,
    prompts: Any,
    *,
    judge: Any,
    scorer: Any,
    labels: tuple[str, ...] | None,
    weak_tokens: int,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    from cowest_graph import create_cowest_graph
    from cowest_graph.evaluate import drafts_as_answers, evaluate_graph, paired_difference
    from cowest_graph.models import load_weak_model

    rows, results, drafts = [], {}, {}
    for backend in ("hf", "llama.cpp"):
        step(f"{task}: CoWest with the {backend} backend ({len(questions)} questions)")
        weak = load_weak_model(backend=backend, adapter=sft_dir, max_new_tokens=weak_tokens, temperature=0.0)
        graph = create_cowest_graph(weak, strong, scorer=scorer, num_drafts=1, prompts=prompts).compile()
        start = time.perf_counter()
        cowest = await evaluate_graph(
            f"CoWest ({backend})", graph, questions, judge=judge, labels=labels, concurrency=1
        )
        wall = time.perf_counter() - start
        alone = drafts_as_answers(f"weak alone ({backend})", cowest, questions, judge=judge, labels=labels)
        drafts[backend] = list(cowest.drafts)
        for r in (alone, cowest):
            results[r.name] = r
            rows.append({"task": task, "backend": backend, **r.summary(), "wall_s": wall})
        del weak, graph
    same = sum(a == b for a, b in zip(drafts["hf"], drafts["llama.cpp"], strict=True))
    paired = {
        "task": task,
        "same_greedy_draft": same / len(questions),
        "weak_alone": paired_difference(results["weak alone (hf)"], results["weak alone (llama.cpp)"]),
        "cowest": paired_difference(results["CoWest (hf)"], results["CoWest (llama.cpp)"]),
    }
    return rows, paired


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n-ethics", type=int, default=200)
    parser.add_argument("--n-sft", type=int, default=480)
    parser.add_argument("--skip-demo", action="store_true")
    parser.add_argument("--skip-ethics", action="store_true")
    parser.add_argument("--demo-sft", default=None, help="reuse this demo SFT adapter")
    parser.add_argument("--ethics-sft", default=None, help="reuse this ETHICS SFT adapter")
    parser.add_argument("--name", default="backends")
    args = parser.parse_args()

    from cowest_graph.critique import answer_match, label_match
    from cowest_graph.data import load_questions
    from cowest_graph.evaluate import answer_judge, label_judge
    from cowest_graph.loop import LoopConfig
    from cowest_graph.models.strong import open_strong_model
    from cowest_graph.prompts import CowestPrompts
    from cowest_graph.train import train_sft

    work = Path(tempfile.mkdtemp(prefix="backends-"))
    loop = LoopConfig()
    jobs = []
    if not args.skip_demo:
        prompts = CowestPrompts(weak_system=loop.weak_system, weak_user="Question: {question}").with_format(
            loop.answer_format
        )
        sft_dir = args.demo_sft
        if sft_dir is None:
            step("demo: SFT with the demo's recipe")
            sft_dir = train_sft(
                loop.data_dir / "sft.jsonl", output_dir=work / "demo", config=loop.sft, prompts=prompts
            ).adapter_dir
        test_q = load_questions(loop.data_dir / "test_questions.jsonl")
        jobs.append(
            (
                "demo",
                Path(sft_dir),
                test_q,
                prompts,
                answer_judge,
                answer_match,
                None,
                loop.weak_max_new_tokens,
            )
        )
    if not args.skip_ethics:
        from benchmarks.quality import draw_samples, k_shot, load_ethics, sft_step, split_dev

        task = split_dev(load_ethics(), 100)  # as benchmarks/quality.py: the dev slice never trains
        samples = draw_samples(task, 0, n_report=args.n_ethics, n_sft=args.n_sft, n_collect=0, on="report")
        prompts = CowestPrompts().with_format(k_shot(task, 2, 0))
        sft_dir = args.ethics_sft
        if sft_dir is None:
            step(f"ethics: SFT on {len(samples.sft)} train-side rows")
            rows = [{"question": e.question, "answer": f"Answer: {e.reference}"} for e in samples.sft]
            sft_dir = train_sft(
                rows,
                output_dir=work / "ethics",
                prompts=prompts,
                config=sft_step(epochs=1.0, seed=0),  # the quality benchmark's SFT step
            ).adapter_dir
        jobs.append(
            (
                "ethics",
                Path(sft_dir),
                samples.report,
                prompts,
                label_judge(task.labels),
                label_match(task.labels),
                task.labels,
                48,
            )
        )

    all_rows: list[dict[str, Any]] = []
    paired: list[dict[str, Any]] = []

    async def run_all(strong: Any) -> None:
        for name, sft_dir, questions, prompts, judge, scorer, labels, tokens in jobs:
            rows, pair = await compare(
                name,
                sft_dir,
                questions,
                strong,
                prompts,
                judge=judge,
                scorer=scorer,
                labels=labels,
                weak_tokens=tokens,
            )
            all_rows.extend(rows)
            paired.append(pair)

    with open_strong_model("qwen", max_tokens=loop.strong_max_new_tokens) as strong:
        asyncio.run(run_all(strong))
    keep = ("task", "backend", "name", "n", "accuracy", "ci_low", "ci_high", "unparseable_rate", "wall_s")
    print_table("weak backends on held-out questions", [{k: r.get(k) for k in keep} for r in all_rows])
    print_table(
        "llama.cpp - hf (paired)",
        [
            {
                "task": p["task"],
                "same greedy draft": p["same_greedy_draft"],
                "weak alone diff": p["weak_alone"]["difference"],
                "weak alone p": p["weak_alone"]["mcnemar_p"],
                "CoWest diff": p["cowest"]["difference"],
                "CoWest p": p["cowest"]["mcnemar_p"],
            }
            for p in paired
        ],
    )
    path = save(args.name, {"rows": all_rows, "paired": paired, "settings": vars(args)})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
