"""The whole CoWest loop on one domain: SFT -> collect -> pairs -> DPO -> evaluate.

`run_loop` is what `cowest-graph demo` runs: the embedded SmolLM2 as the weak model, the real
offline strong model (Qwen2.5-Coder-1.5B-Instruct behind llama.cpp's OpenAI-compatible server) and
the project's own example domain (`examples/data/quillfeather`), whose questions need both a
private rule (weak) and a reasoning step (strong). Every step is resumable: an existing SFT
adapter, already-collected traces and an existing DPO adapter of the same work directory are reused.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.caches import InMemoryCache
from rich import box
from rich.console import Console
from rich.table import Table

from cowest_graph.adapters import latest_adapter
from cowest_graph.collect import acollect
from cowest_graph.critique import answer_match
from cowest_graph.data import load_questions
from cowest_graph.evaluate import (
    ConditionResult,
    answer_judge,
    drafts_as_answers,
    evaluate_graph,
    evaluate_model_alone,
    paired_difference,
)
from cowest_graph.feedback import build_preference_pairs
from cowest_graph.graph import create_cowest_graph
from cowest_graph.models import WeakBackend, load_weak_model
from cowest_graph.models.strong import open_strong_model
from cowest_graph.prompts import CowestPrompts
from cowest_graph.tracing import CowestTracer
from cowest_graph.train import DPOTrainConfig, LoraSettings, SFTTrainConfig, train_dpo, train_sft

ALL_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
EXAMPLE_DATA = Path(__file__).resolve().parent.parent / "examples" / "data" / "quillfeather"


@dataclass
class LoopConfig:
    """Settings of one loop run (defaults fit the demo: <= 15 minutes on 2 CPU cores)."""

    data_dir: Path = EXAMPLE_DATA
    """Holds `sft.jsonl`, `train_questions.jsonl`, `test_questions.jsonl`."""
    workdir: Path = Path("runs/demo")
    strong: str = "qwen"
    """Strong model spec (`open_strong_model`): `qwen` (served by llama.cpp), `smollm2` (the 135M
    in-process stand-in), `openai:MODEL`, an `http(s)://.../v1` URL or a `.gguf` path."""
    answer_format: str = (
        "Reply in exactly two lines: 'Working: <one short calculation>' and then 'Answer: <only the "
        "final value, e.g. 3, 15:15 or Friday>'."
    )
    weak_system: str = "You know the internal rules of Quillfeather Labs. State the rule the question needs."
    """The weak prompt (short: SFT cost grows with every prompt token; the answer format is the
    strong model's business, so the weak prompt does not carry it)."""
    num_drafts: int = 4
    weak_backend: WeakBackend | None = None
    """Weak inference backend (`hf` or `llama.cpp`; None: `$COWEST_WEAK_BACKEND` or the default).
    Training always runs on transformers."""
    weak_max_new_tokens: int = 32
    strong_max_new_tokens: int = 64
    weak_temperature: float = 1.0
    concurrency: int = 1
    """Graph runs in flight: 1, since on 2 cores the weak model and the llama.cpp server would
    fight over the same cores (each uses both)."""
    sft: SFTTrainConfig = field(
        # Facts need capacity: LoRA on every linear layer. Measured here: 3 epochs on attention only
        # taught the answers' form but no facts (0/24 held out); this recipe reached 18/24.
        default_factory=lambda: SFTTrainConfig(
            num_train_epochs=3,
            learning_rate=2e-3,
            per_device_train_batch_size=8,
            lora=LoraSettings(r=32, alpha=64, target_modules=ALL_LINEAR),
        )
    )
    dpo: DPOTrainConfig = field(
        # TRL's default learning rate (5e-5). Measured here with 2e-4: 16 pairs on 6 rules fixed the
        # rule in the drafts of 3 held-out questions but reworded the drafts of every rule (and the
        # strong model's arithmetic follows the wording), net -1 question (0.417 -> 0.396).
        default_factory=lambda: DPOTrainConfig(num_train_epochs=2, beta=0.1, per_device_train_batch_size=4)
    )
    min_margin: float = 0.5
    limit: int | None = None
    """Use only the first N train and test questions (a quick smoke run)."""


def run_loop(config: LoopConfig | None = None, *, console: Console | None = None) -> dict[str, Any]:
    """Run SFT -> collect -> pairs -> DPO -> evaluate and return (and save) the results.

    Example:
        >>> results = run_loop(LoopConfig(limit=4))  # doctest: +SKIP
        >>> [c["name"] for c in results["conditions"]]  # doctest: +SKIP
        ['weak alone (SFT)', 'strong alone', 'CoWest (SFT weak)', 'CoWest aligned (DPO weak)']
    """
    config = config or LoopConfig()
    console = console or Console()
    work = Path(config.workdir)
    work.mkdir(parents=True, exist_ok=True)
    adapters = work / "adapters"
    timings: dict[str, float] = {}
    prompts = CowestPrompts(weak_system=config.weak_system, weak_user="Question: {question}").with_format(
        config.answer_format
    )
    train_q = load_questions(config.data_dir / "train_questions.jsonl")[: config.limit]
    test_q = load_questions(config.data_dir / "test_questions.jsonl")[: config.limit]

    console.rule("[bold]1. domain SFT of the weak model")
    t = time.perf_counter()
    sft_dir = latest_adapter(adapters, kind="sft")
    if sft_dir is None:
        sft_dir = train_sft(
            config.data_dir / "sft.jsonl", output_dir=adapters, config=config.sft, prompts=prompts
        ).adapter_dir
    console.print(f"SFT adapter: {sft_dir}")
    timings["sft_s"] = time.perf_counter() - t
    with open_strong_model(config.strong, max_tokens=config.strong_max_new_tokens) as strong:
        # One event loop for collection and evaluation: ChatOpenAI caches one async HTTP client per
        # endpoint, bound to the loop that first used it ("Event loop is closed" under a second one).
        return asyncio.run(_with_strong(config, console, strong, sft_dir, prompts, timings, train_q, test_q))


async def _with_strong(
    config: LoopConfig,
    console: Console,
    strong: Any,
    sft_dir: Path,
    prompts: CowestPrompts,
    timings: dict[str, float],
    train_q: list[Any],
    test_q: list[Any],
) -> dict[str, Any]:
    work = Path(config.workdir)
    adapters = work / "adapters"
    strong_name = getattr(strong, "model_name", None) or getattr(strong, "model_id", type(strong).__name__)
    console.rule(f"[bold]2. collect traces (k drafts, {strong_name} refines, strong alone)")
    t = time.perf_counter()
    weak = load_weak_model(
        backend=config.weak_backend,
        adapter=sft_dir,
        max_new_tokens=config.weak_max_new_tokens,
        temperature=config.weak_temperature,
    )
    # Strong answers are greedy, so identical drafts (frequent: the SFT weak model is confident)
    # share one strong call during collection (LangChain's in-memory model cache).
    collect_graph = create_cowest_graph(
        weak,
        strong.model_copy(update={"cache": InMemoryCache()}),
        scorer=answer_match,
        num_drafts=config.num_drafts,
        measure_influence=True,
        prompts=prompts,
    ).compile()
    tracer = CowestTracer(f"sqlite:///{work / 'traces.db'}", metadata={"phase": "collect"})
    report = await acollect(collect_graph, train_q, tracer, concurrency=config.concurrency)
    console.print(f"collected {report.succeeded} new, skipped {report.skipped} done, failed {report.failed}")
    timings["collect_s"] = time.perf_counter() - t

    console.rule("[bold]3. collaborative-feedback pairs")
    pairs = build_preference_pairs(
        tracer.store, min_margin=config.min_margin, eval_fraction=0.0, max_pairs_per_prompt=4
    )
    console.print(pairs.report.as_dict())

    console.rule("[bold]4. DPO of the weak model (from the SFT adapter)")
    t = time.perf_counter()
    dpo_dir = latest_adapter(adapters, kind="dpo")
    if dpo_dir is None:
        dpo_dir = train_dpo(pairs, output_dir=adapters, adapter=sft_dir, config=config.dpo).adapter_dir
    console.print(f"DPO adapter: {dpo_dir}")
    timings["dpo_s"] = time.perf_counter() - t

    console.rule("[bold]5. evaluate on held-out questions")
    t = time.perf_counter()
    conditions = await _evaluate(config, weak, strong, sft_dir, dpo_dir, test_q, prompts)
    timings["evaluate_s"] = time.perf_counter() - t
    by_name = {c.name: c for c in conditions}
    paired = [
        paired_difference(by_name["strong alone"], by_name["CoWest (SFT weak)"]),
        paired_difference(by_name["CoWest (SFT weak)"], by_name["CoWest aligned (DPO weak)"]),
    ]
    results = {
        "domain": str(config.data_dir),
        "strong_model": str(strong_name),
        "weak_model": weak.model_id,
        "n_test": len(test_q),
        "n_train_questions": len(train_q),
        "pairs": pairs.report.as_dict(),
        "adapters": {"sft": str(sft_dir), "dpo": str(dpo_dir)},
        "conditions": [c.summary() for c in conditions],
        "paired": paired,
        "per_question": [
            {
                "id": e.id,
                "reference": e.reference,
                **{c.name: {"correct": c.correct[i], "answer": c.answers[i]} for c in conditions},
                "drafts": {c.name: c.drafts[i] for c in conditions if c.drafts},
            }
            for i, e in enumerate(test_q)
        ],
        "timings": timings,
        "config": json.loads(json.dumps(asdict(config), default=str)),
    }
    (work / "results.json").write_text(json.dumps(results, indent=2))
    print_results(conditions, console, title=f"held-out questions (n={len(test_q)})")
    print_paired(paired, console)
    chart = plot_results(conditions, work / "results.png", title="CoWest loop on the demo domain")
    console.print(f"results: {work / 'results.json'}" + (f", chart: {chart}" if chart else ""))
    return results


async def _evaluate(
    config: LoopConfig,
    weak: Any,
    strong: Any,
    sft_dir: Path,
    dpo_dir: Path,
    test_q: list[Any],
    prompts: CowestPrompts,
) -> list[ConditionResult]:
    """Strong alone, CoWest with the SFT and with the DPO weak model (one greedy draft each), and
    weak alone: the SFT model's greedy drafts scored as its own answers (the same prompt and tokens
    as a separate weak-alone pass would give)."""
    greedy = {"max_new_tokens": config.weak_max_new_tokens, "temperature": 0.0}
    strong_alone = await evaluate_model_alone(
        "strong alone",
        strong,
        test_q,
        judge=answer_judge,
        prompts=prompts,
        counts_as_strong=True,
        concurrency=config.concurrency,
        progress=True,
    )
    graphs = []
    for name, adapter in (("CoWest (SFT weak)", sft_dir), ("CoWest aligned (DPO weak)", dpo_dir)):
        weak.load_adapter(adapter)
        drafter = weak.model_copy(update=greedy)
        graph = create_cowest_graph(
            drafter, strong, scorer=answer_match, num_drafts=1, prompts=prompts
        ).compile()
        graphs.append(
            await evaluate_graph(
                name, graph, test_q, judge=answer_judge, concurrency=config.concurrency, progress=True
            )
        )
    weak_alone = drafts_as_answers("weak alone (SFT)", graphs[0], test_q, judge=answer_judge)
    return [weak_alone, strong_alone, *graphs]


def print_results(conditions: list[ConditionResult], console: Console, *, title: str) -> None:
    """Print the results table (fits 80 columns): accuracy, its 95% bootstrap interval, the
    unparseable share, strong-model calls and tokens per question, wall time."""
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    table.add_column("condition", no_wrap=True)
    for col in ("acc.", "95% CI", "unp.", "calls/q", "tok/q", "wall s"):
        table.add_column(col, justify="right", no_wrap=True)
    for c in conditions:
        table.add_row(
            c.name,
            f"{c.accuracy:.3f}",
            f"[{c.ci_low:.3f}, {c.ci_high:.3f}]",
            f"{c.unparseable_rate:.1%}",
            f"{c.strong_calls_per_q:.2f}",
            f"{c.strong_tokens_per_q:.0f}",
            "-" if c.wall_s != c.wall_s else f"{c.wall_s:.0f}",  # NaN: derived, not timed
        )
    console.print(table)


def print_paired(paired: list[dict[str, Any]], console: Console) -> None:
    """Print paired differences on the same questions (bootstrap interval, McNemar's exact p; "2nd"
    and "1st": questions only that condition got right)."""
    table = Table(
        title="paired differences (same questions)",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    for col in ("second - first", "diff", "95% CI", "2nd", "1st", "McNemar p"):
        table.add_column(col, no_wrap=True)
    for p in paired:
        table.add_row(
            f"{p['second']}\n  - {p['first']}",
            f"{p['difference']:+.3f}",
            f"[{p['ci_low']:+.3f}, {p['ci_high']:+.3f}]",
            str(p["second_only"]),
            str(p["first_only"]),
            f"{p['mcnemar_p']:.3f}",
        )
    console.print(table)


def plot_results(conditions: list[ConditionResult], path: Path, *, title: str) -> Path | None:
    """A bar chart of accuracy with 95% intervals; None when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(7, 3.8))
    names = [c.name for c in conditions]
    acc = [c.accuracy for c in conditions]
    err = [[c.accuracy - c.ci_low for c in conditions], [c.ci_high - c.accuracy for c in conditions]]
    ax.bar(range(len(names)), acc, yerr=err, capsize=4, color=["#8da0cb", "#fc8d62", "#66c2a5", "#1b9e77"])
    ax.set_xticks(range(len(names)), names, rotation=12, ha="right", fontsize=8)
    ax.set_ylabel("accuracy (95% bootstrap CI)")
    ax.set_ylim(0, 1)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
