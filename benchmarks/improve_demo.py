"""Continuous improvement on the demo domain: N rounds of `improve` with the real strong model.

Each round collects traces over the demo's 24 train questions with the current adapter (k = 4
drafts at T = 1, the strong model with and without each draft), builds collaborative-feedback
pairs from the traces no earlier round used, runs DPO from the current adapter, and lets the gate
(McNemar on the 48 held-out questions, plus guards) decide whether the candidate is promoted.
It starts from the demo's domain-SFT adapter (trained here unless `--sft-adapter` names one), with
the demo's prompts and DPO recipe, so the rounds continue where `cowest-graph demo` stops.

Writes the adapters directory (with `report.json`, `report.html`, `report.png`) under `--workdir`
and copies the report to `benchmarks/results/improve/`.

    python -m benchmarks.improve_demo --rounds 3
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from benchmarks.common import RESULTS, print_table, step


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=Path("runs/improve-demo"))
    parser.add_argument("--sft-adapter", type=Path, default=None, help="A demo SFT adapter to start from.")
    parser.add_argument("--strong", default="qwen")
    parser.add_argument("--weak-backend", default=None)
    args = parser.parse_args()

    from langchain_core.caches import InMemoryCache

    from cowest_graph.adapters import list_adapters
    from cowest_graph.improve import improve
    from cowest_graph.loop import LoopConfig
    from cowest_graph.models.strong import open_strong_model
    from cowest_graph.prompts import CowestPrompts
    from cowest_graph.train import train_sft

    demo = LoopConfig()
    prompts = CowestPrompts(weak_system=demo.weak_system, weak_user="Question: {question}").with_format(
        demo.answer_format
    )
    adapters = args.workdir / "adapters"
    adapters.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    if not list_adapters(adapters):
        if args.sft_adapter is not None:
            shutil.copytree(args.sft_adapter, adapters / "v0001")
            step(f"starting from {args.sft_adapter} (copied to {adapters / 'v0001'})")
        else:
            step("domain SFT of the weak model (the demo's recipe)")
            train_sft(demo.data_dir / "sft.jsonl", output_dir=adapters, config=demo.sft, prompts=prompts)

    def show(number: int, what: str) -> None:
        step(f"round {number}: {what}")

    with open_strong_model(args.strong, max_tokens=demo.strong_max_new_tokens) as strong:
        # The strong model answers greedily: identical prompts (frequent: the weak model repeats
        # itself) share one call, as in the demo's collection.
        cached = strong.model_copy(update={"cache": InMemoryCache()})
        records = improve(
            f"sqlite:///{args.workdir / 'traces.db'}",
            adapters,
            demo.data_dir / "test_questions.jsonl",
            strong=cached,
            rounds=args.rounds,
            collect=demo.data_dir / "train_questions.jsonl",
            prompts=prompts,
            dpo=demo.dpo,
            min_margin=demo.min_margin,
            num_drafts=demo.num_drafts,
            weak_backend=args.weak_backend,
            weak_temperature=demo.weak_temperature,
            weak_max_new_tokens=demo.weak_max_new_tokens,
            strong_max_new_tokens=demo.strong_max_new_tokens,
            on_step=show,
        )
    rows = []
    for rec in records:
        res = rec.get("results") or {}
        gate = rec.get("gate") or {}
        rows.append(
            {
                "round": rec["round"],
                "pairs": rec.get("pairs", 0),
                "current acc": (res.get("current") or {}).get("accuracy"),
                "candidate acc": (res.get("candidate") or {}).get("accuracy"),
                "p (McNemar)": (gate.get("paired") or {}).get("mcnemar_p"),
                "decision": "promoted" if rec.get("promoted") else "rejected",
                "reasons": "; ".join(gate.get("reasons") or ([rec["skipped"]] if rec.get("skipped") else [])),
            }
        )
    print_table(f"improve on the demo domain ({args.rounds} rounds)", rows)
    out = RESULTS / "improve"
    out.mkdir(parents=True, exist_ok=True)
    for name in ("report.json", "report.html", "report.png"):
        if (adapters / name).exists():
            shutil.copy(adapters / name, out / name)
    step(f"done in {time.perf_counter() - started:.0f} s; report copied to {out}")


if __name__ == "__main__":
    main()
