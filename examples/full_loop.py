"""collect -> pairs -> train -> reload, on a handful of demo questions (a short, real run).

    HF_HUB_OFFLINE=1 python examples/full_loop.py [WORKDIR]

The full version, with SFT first and an evaluation, is `cowest-graph demo`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from cowest_graph import create_cowest_graph, load_weak_model, token_f1  # noqa: E402
from cowest_graph.collect import collect  # noqa: E402
from cowest_graph.data import Example  # noqa: E402
from cowest_graph.feedback import build_preference_pairs  # noqa: E402
from cowest_graph.tracing import CowestTracer  # noqa: E402
from cowest_graph.train import DPOTrainConfig, train_dpo  # noqa: E402

# General questions the base model half knows, so sampled drafts lead to answers of varying quality.
QUESTIONS = [
    ("What is the capital of France?", "Paris is the capital of France."),
    ("Which planet is known as the Red Planet?", "Mars is known as the Red Planet."),
    ("What gas do plants absorb from the air?", "Plants absorb carbon dioxide."),
    ("How many legs does a spider have?", "A spider has eight legs."),
    ("What is the largest ocean on Earth?", "The Pacific Ocean is the largest."),
    ("Who wrote Romeo and Juliet?", "William Shakespeare wrote Romeo and Juliet."),
]


def main(workdir: str | Path = "runs/full_loop", questions: int = 6, dpo_steps: int = 2) -> dict:
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    weak = load_weak_model(max_new_tokens=24, temperature=1.0)
    strong = load_weak_model(max_new_tokens=24, temperature=0.0)
    graph = create_cowest_graph(weak, strong, scorer=token_f1, num_drafts=4, measure_influence=True).compile()
    tracer = CowestTracer(f"sqlite:///{work / 'traces.db'}")

    # 1. collect traces (resumable: a rerun skips questions already done)
    examples = [Example(f"q{i}", q, ref) for i, (q, ref) in enumerate(QUESTIONS[:questions])]
    report = collect(graph, examples, tracer, concurrency=3, progress=False)
    print(f"collected {report.succeeded} runs, skipped {report.skipped}")

    # 2. collaborative-feedback pairs: Delta = F1(strong with the draft) - F1(strong alone)
    pairs = build_preference_pairs(tracer.store, min_margin=0.05, eval_fraction=0.0)
    print("pairs:", pairs.report.as_dict())

    # 3. DPO on those pairs -> a new adapter version
    result = train_dpo(
        pairs,
        output_dir=work / "adapters",
        config=DPOTrainConfig(max_steps=dpo_steps, per_device_train_batch_size=2),
    )
    print("adapter:", result.adapter_dir, result.metrics.get("last_loss"))

    # 4. hot-swap the adapter into the running graph's weak model
    weak.load_adapter(result.adapter_dir)
    out = graph.invoke(
        {"question": examples[0].question, "reference": examples[0].reference}, config={"callbacks": [tracer]}
    )
    print("after DPO:", out["answer"], "| adapter:", weak.adapter_version)
    return {"pairs": pairs.report, "adapter": result, "answer": out["answer"], "tracer": tracer}


if __name__ == "__main__":
    main(*(sys.argv[1:2]))
