"""Which DPO step keeps the weak model answering, not sliding onto one label: measured on dev rows.

    python -m benchmarks.dpo_variants /tmp/cowest-quality-XXXX/ethics-s0 --seed 0

Takes the work folder one (task, seed) run of `benchmarks/quality.py` leaves behind (its SFT adapter
`adapters/v0001` and its round-1 collection traces `traces-round1.db`), builds the round-1 preference
pairs from those traces exactly as the run did, trains each DPO variant from the SFT adapter (plain
DPO or DPO plus the chosen drafts' NLL, i.e. RPO, at a learning rate; `:balanced` after a variant
trains it on the pairs cut to as many per chosen label, `balance_chosen_labels`), and reads the weak
model's greedy label on the task's fixed train-side dev slice (never the report side): accuracy and
the share of each label. A step that moves the shares far from the SFT model's, with no gain in accuracy, has
learnt a label, not the task. Writes benchmarks/results/dpo_variants.json (rows are added per
variant and work folder).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS, print_table, save


def weak_labels(adapter: Path, task: Any, prompts: Any, weak_tokens: int = 48) -> dict[str, Any]:
    """The weak model's greedy label on every dev row: accuracy, label shares, unparseable rate."""
    from benchmarks.quality import label_shares
    from cowest_graph.evaluate import evaluate_model_alone, label_judge
    from cowest_graph.models import load_weak_model

    weak = load_weak_model(adapter=adapter, max_new_tokens=weak_tokens, temperature=0.0)
    r = asyncio.run(
        evaluate_model_alone(
            "weak alone",
            weak,
            task.dev,
            judge=label_judge(task.labels),
            labels=task.labels,
            messages=prompts.weak_messages,
            concurrency=4,
        )
    )
    shares = label_shares(r.answers, task.labels)
    return {
        "dev_rows": r.n,
        "dev_accuracy": r.accuracy,
        **{f"share {label}": share for label, share in shares.items()},
        "unparseable": r.unparseable_rate,
    }


def parse_variant(spec: str) -> tuple[str, float, bool]:
    """`dpo:2e-4`, `rpo:5e-5` or `rpo:5e-5:balanced` -> (method, learning rate, balanced pairs).

    >>> parse_variant("rpo:5e-5")
    ('rpo', 5e-05, False)
    >>> parse_variant("dpo:1e-4:balanced")
    ('dpo', 0.0001, True)
    """
    method, lr, *rest = spec.split(":")
    if method not in ("dpo", "rpo") or not lr or rest not in ([], ["balanced"]):
        raise SystemExit(f"variant {spec!r}: write dpo:<lr> or rpo:<lr>, optionally followed by :balanced")
    return method, float(lr), bool(rest)


def main() -> None:
    from benchmarks.quality import (
        balance_chosen_labels,
        dpo_step,
        load_ethics,
        load_pubmedqa,
        pair_labels,
        split_dev,
        task_prompts,
    )
    from cowest_graph.feedback import build_preference_pairs
    from cowest_graph.models import load_weak_model
    from cowest_graph.store import RunFilter, open_trace_store
    from cowest_graph.train import train_dpo

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("work", type=Path, help="a quality run's <task>-s<seed> folder")
    parser.add_argument("--seed", type=int, required=True, help="the seed of that run (its k-shot examples)")
    parser.add_argument("--variants", default="dpo:2e-4,rpo:2e-4,rpo:5e-5")
    parser.add_argument("--nll-weight", type=float, default=1.0, help="the NLL weight of the rpo variants")
    parser.add_argument("--min-margin", type=float, default=0.5)
    parser.add_argument("--shots", type=int, default=2)
    parser.add_argument("--n-dev", type=int, default=100)
    parser.add_argument(
        "--context-chars", type=int, default=600, help="PubMedQA context cut: the run's own setting"
    )
    parser.add_argument("--name", default="dpo_variants")
    args = parser.parse_args()
    variants = [parse_variant(v) for v in args.variants.split(",") if v]
    task_name = args.work.name.rsplit("-s", 1)[0]
    loaders = {"ethics": load_ethics, "pubmedqa": lambda: load_pubmedqa(args.context_chars)}
    if task_name not in loaders:
        raise SystemExit(f"{args.work} is not a quality run's ethics-sN or pubmedqa-sN folder")
    task = split_dev(loaders[task_name](), args.n_dev)
    prompts = task_prompts(task, args.shots, args.seed)
    sft = args.work / "adapters" / "v0001"
    traces = args.work / "traces-round1.db"
    if not (sft / "adapter_config.json").is_file() or not traces.is_file():
        raise SystemExit(f"{args.work} holds no SFT adapter (adapters/v0001) or no traces-round1.db")

    version = load_weak_model(adapter=sft).adapter_version
    store = open_trace_store(f"sqlite:///{traces}", create=False)
    pairs = build_preference_pairs(
        store, min_margin=args.min_margin, eval_fraction=0.0, flt=RunFilter(adapter_version=version)
    )
    print(f"{task_name} seed {args.seed}: {pairs.report.pairs} pairs from the SFT drafts", flush=True)
    previous = RESULTS / f"{args.name}.json"
    rows = json.loads(previous.read_text())["rows"] if previous.exists() else []
    run = args.work.resolve().parent.name  # the quality run's --work folder
    key = {"task": task_name, "seed": args.seed, "run": run, "pairs": pairs.report.pairs}
    mine: list[dict[str, Any]] = [
        {
            **key,
            "variant": "SFT (no DPO)",
            "trained_pairs": 0,
            "train_s": 0.0,
            **weak_labels(sft, task, prompts),
        }
    ]
    out = Path(tempfile.mkdtemp(prefix="cowest-dpo-variants-"))
    for method, lr, balanced in variants:
        t0 = time.perf_counter()
        nll = args.nll_weight if method == "rpo" else 0.0
        used = balance_chosen_labels(pairs, task.labels, args.seed) if balanced else pairs
        config = dpo_step(learning_rate=lr, nll_weight=nll, seed=args.seed)  # the quality run's step
        trained = train_dpo(used, output_dir=out, adapter=sft, config=config)
        name = f"{method.upper()} lr {lr:g}" + (f" nll {args.nll_weight:g}" if method == "rpo" else "")
        mine.append(
            {
                **key,
                "variant": name + (", balanced" if balanced else ""),
                "trained_pairs": used.report.pairs,
                "chosen": pair_labels(used["train"], task.labels)["chosen"],
                "train_s": time.perf_counter() - t0,
                **weak_labels(trained.adapter_dir, task, prompts),
            }
        )
        print(mine[-1], flush=True)
    rows = [r for r in rows if (r["task"], r["seed"], r.get("run")) != (task_name, args.seed, run)] + mine
    print_table("weak model's greedy labels on train-side dev rows", mine)
    print(f"wrote {save(args.name, {'rows': rows})}")


if __name__ == "__main__":
    main()
