"""Quality on real held-out data: the CoWest paper's table, replicated small.

    python -m benchmarks.quality --quick --strong qwen      # smoke run on the train-side dev slice
    python -m benchmarks.quality --strong qwen --supericl   # the full run (hours on 2 CPU cores)

Data: ../shared/datasets (split rules binding: train/tune only on the train side).
  * ETHICS commonsense short: SFT/DPO data from cm_test_hard_short.csv; report on cm_test_short.csv.
  * PubMedQA PQA-L: train/tune on the 500 ids NOT in test_ground_truth.json; report on the 500 test ids.
  * CRASS-44: evaluation only (no training: weak alone, strong alone, CoWest with the base weak model).

Conditions (same answer format, same k-shot examples from the train side): (1) weak alone after
SFT, (2) strong alone, (3) CoWest: SFT weak drafts -> strong refines, (4) CoWest aligned after one
round of collaborative-feedback DPO, (5) a second round; with --supericl also a SuperICL-style peer
baseline (the SFT weak model's label and confidence, by label choice, as the one draft) and the
weak model's own label choice. The graph never sees the reference at evaluation; one draft at
inference. Besides each bootstrap interval, every (task, seed) run reports paired differences on
its rows (bootstrap interval and McNemar's exact test) and how CoWest used the drafts.
`--sft-target rationale` trains the weak model to write the data set's own rationale before the
label (PubMedQA: the abstract's conclusion, train side only; ETHICS: one the strong model wrote
given the label, `benchmarks/rationales.py`), so its drafts carry background and
reasoning, not only a label; those conditions are named "... SFT with rationales ...".

The strong model: `--strong qwen` serves Qwen2.5-Coder-1.5B-Instruct with llama.cpp's OpenAI server
and, by default, constrains its reply to `Answer: <label>` with a GBNF grammar (`--strong-answer
label`: 0.57 s a question on ETHICS here vs 1.88 s in free text, same accuracy on 40 dev rows); the
k-shot examples sit at the end of the system prompts so llama.cpp reuses their KV cache across
calls. `--strong standin` is the general SmolLM2-135M-Instruct answering by constrained label
choice (`benchmarks/label_choice.py`); its figures are kept as `quality_standin.*`.

Writes benchmarks/results/quality.json, quality.md and quality.png (another stem with --name),
after every finished condition (an unfinished (task, seed) run is marked `"partial": true`), so a
run cut after hours keeps what it measured. Each (task, seed) run also keeps, in its work folder
(printed at the start), every finished condition with its per-question outcomes, the SFT adapter and
each DPO round (`benchmarks/resume.py`): the same command with `--work DIR` goes on where a cut run
stopped (an SFT or DPO training cut midway from its last checkpoint, every 25 steps), and with more
`--rounds` adds rounds to a finished one. The results rows also keep each condition's per-question
outcomes and each run its settings and adapter fingerprints: with `--append`, a fresh work folder
(another machine) adopts the finished conditions from the results file and measures the rest, and
trains a round from the pairs it kept in `results/pairs/` instead of collecting it again
(`benchmarks/round_pairs.py`).
`--sft-adapter DIR` reuses an earlier run's SFT adapter for the same (task, seed) instead of training
it again.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import random
import re
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS, save

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets"


@dataclass
class Task:
    name: str
    labels: tuple[str, ...]
    train: list[Any]  # Examples (train side)
    report: list[Any]  # Examples (report side)
    answer_format: str
    trainable: bool = True
    dev: list[Any] | None = None  # a fixed train-side slice for smoke runs and prompt checks


DEV_SEED = 2025


def split_dev(task: Task, n_dev: int) -> Task:
    """Hold out a fixed train-side `dev` slice (never used for shots, SFT or collection).

    Smoke runs (`--quick`) report on it, so prompts and parsing are checked without looking at a
    report split (the split rules forbid tuning on one).
    """
    if not task.trainable or n_dev <= 0:
        return task
    pool = list(task.train)
    random.Random(DEV_SEED).shuffle(pool)
    task.dev, task.train = pool[:n_dev], pool[n_dev:]
    return task


def _examples(rows: list[tuple[str, str, str]], rationales: dict[str, str] | None = None) -> list[Any]:
    """Examples from (id, question, label) rows; `rationales` (id -> text written by the data set's
    authors, e.g. PubMedQA's long answers) go into `meta["rationale"]`."""
    from cowest_graph.data import Example

    rationales = rationales or {}
    return [
        Example(i, q, r, meta={"rationale": rationales[i]} if i in rationales else {}) for i, q, r in rows
    ]


def load_ethics(rationales: dict[str, str] | None = None) -> Task:
    """ETHICS commonsense; `rationales` (row id -> text, train side, from `benchmarks/rationales.py`)
    are what `--sft-target rationale` trains on."""

    def read(name: str) -> list[tuple[str, str, str]]:
        with (SHARED / "ethics_commonsense" / name).open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        return [
            (
                f"{name}:{i}",
                f"Scenario: {r['input']}",
                "unacceptable" if r["label"].strip() == "1" else "acceptable",
            )
            for i, r in enumerate(rows)
        ]

    return Task(
        "ethics",
        ("acceptable", "unacceptable"),
        _examples(read("cm_test_hard_short.csv"), rationales),
        _examples(read("cm_test_short.csv")),
        "Is what the narrator did morally acceptable or unacceptable? End with 'Answer: acceptable' or "
        "'Answer: unacceptable'.",
    )


def load_pubmedqa(context_chars: int) -> Task:
    data = json.loads((SHARED / "pubmedqa" / "ori_pqal.json").read_text())
    test_ids = set(json.loads((SHARED / "pubmedqa" / "test_ground_truth.json").read_text()))

    def row(pid: str) -> tuple[str, str, str]:
        item = data[pid]
        context = " ".join(item["CONTEXTS"])[:context_chars]
        return (pid, f"Context: {context}\nQuestion: {item['QUESTION']}", item["final_decision"])

    train = [row(p) for p in sorted(data) if p not in test_ids]
    report = [row(p) for p in sorted(data) if p in test_ids]
    # The abstract's conclusion: background and reasoning for the SFT target (`--sft-target
    # rationale`); train side only, report rows never carry it.
    conclusions = {p: data[p]["LONG_ANSWER"].strip() for p in data if p not in test_ids}
    return Task(
        "pubmedqa",
        ("yes", "no", "maybe"),
        _examples(train, conclusions),
        _examples(report),
        "End with 'Answer: yes', 'Answer: no' or 'Answer: maybe'.",
    )


def load_crass() -> Task:
    task = json.loads((SHARED / "crass_ai" / "task.json").read_text())
    rows = []
    for i, ex in enumerate(task["examples"]):
        options = list(ex["target_scores"])
        letters = "ABCD"[: len(options)]
        listed = "\n".join(f"{letter}. {opt}" for letter, opt in zip(letters, options, strict=True))
        gold = letters[[ex["target_scores"][o] for o in options].index(1)]
        rows.append((f"crass:{i}", f"{ex['input']}\nOptions:\n{listed}", gold))
    return Task(
        "crass",
        ("A", "B", "C", "D"),
        [],
        _examples(rows),
        "End with 'Answer: A', 'B', 'C' or 'D'.",
        trainable=False,
    )


STRONG_NAMES = {
    "standin": "general SmolLM2-135M-Instruct (offline stand-in), constrained label choice",
    "qwen": "Qwen2.5-Coder-1.5B-Instruct Q4_K_M on llama.cpp's OpenAI-compatible server, free text, "
    "final 'Answer:' parsed",
    "qwen/label": "Qwen2.5-Coder-1.5B-Instruct Q4_K_M on llama.cpp's OpenAI-compatible server, "
    "constrained decoding (a GBNF grammar admits only 'Answer: <label>')",
}


# The settings a (task, seed) run's figures depend on: a work folder goes on only under the same ones
# (more --rounds, --supericl, another --name or --append do not change what was measured).
RUN_SETTINGS = (
    "on",
    "n_dev",
    "n_sft",
    "n_collect",
    "sft_epochs",
    "sft_target",
    "k",
    "shots",
    "weak_tokens",
    "context_chars",
    "strong",
    "strong_answer",
    "strong_tokens",
    "draft_temperature",
    "min_margin",
    "dpo_lr",
    "nll_weight",
)


KEPT = " (kept from an earlier run of this work folder)"


def run_settings(args: argparse.Namespace, n_report: int) -> dict[str, Any]:
    """What a (task, seed) run's work folder must agree on to be gone on with.

    >>> settings = run_settings(parse_args(["--n-sft", "400"]), 500)
    >>> settings["n_sft"], settings["n_report"]
    (400, 500)
    """
    return {**{key: getattr(args, key) for key in RUN_SETTINGS}, "n_report": n_report}


def strong_name(args: argparse.Namespace) -> str:
    key = args.strong if args.strong == "standin" or args.strong_answer == "free" else f"{args.strong}/label"
    return STRONG_NAMES.get(key, key)


SFT_TARGETS = ("label", "rationale")


def sft_answer(example: Any, target: str = "label") -> str:
    """What the weak model learns to write for one train-side example: the label alone, or
    (`target="rationale"`) the example's rationale (background and reasoning) and then the label.

    >>> from cowest_graph.data import Example
    >>> e = Example("1", "Does it?", "yes", meta={"rationale": "Trials agree."})
    >>> sft_answer(e), sft_answer(e, "rationale")
    ('Answer: yes', 'Trials agree.\\nAnswer: yes')
    """
    if target == "label":
        return f"Answer: {example.reference}"
    if target != "rationale":
        raise ValueError(f"unknown SFT target {target!r}; expected one of {SFT_TARGETS}")
    rationale = (example.meta or {}).get("rationale")
    if not rationale:
        raise ValueError(f"example {example.id!r} has no rationale: its task cannot train on rationales")
    return f"{rationale}\nAnswer: {example.reference}"


def shot_examples(task: Task, k: int, seed: int) -> list[Any]:
    """The k worked examples of a seed, from the TRAIN side only (CRASS, eval-only, gets none)."""
    return random.Random(seed).sample(task.train, k) if task.train and k else []


def k_shot(task: Task, k: int, seed: int, target: str = "label") -> str:
    """The answer format and the k worked examples (`shot_examples`), each answered as the weak
    model is trained to answer (`sft_answer`)."""
    shots = shot_examples(task, k, seed)
    if not shots:
        return task.answer_format
    lines = [f"{s.question}\n{sft_answer(s, target)}" for s in shots]
    return task.answer_format + "\nExamples:\n" + "\n\n".join(lines)


def task_prompts(task: Task, k: int, seed: int, weak_target: str = "label") -> Any:
    """The prompts of one (task, seed): the answer format and the k worked examples go at the end
    of the weak and strong *system* prompts, so every call of a condition shares that prefix and
    llama.cpp reuses its KV cache (only the question and draft are evaluated per call).

    The weak model's shots are answered like its SFT target (`weak_target`); the strong model's
    shots always end in the label alone, so "strong alone" is the same whatever the weak model
    learnt."""
    from cowest_graph.prompts import CowestPrompts

    base = CowestPrompts()
    return CowestPrompts(
        weak_system=f"{base.weak_system}\n{k_shot(task, k, seed, weak_target)}",
        strong_system=f"{base.strong_system}\n{k_shot(task, k, seed)}",
    )


def label_grammar(labels: tuple[str, ...]) -> str:
    """A GBNF grammar that admits exactly `Answer: <label>` (llama.cpp's constrained decoding).

    >>> label_grammar(("yes", "no"))
    'root ::= "Answer: " ("yes" | "no")'
    """
    return 'root ::= "Answer: " (' + " | ".join(f'"{label}"' for label in labels) + ")"


@dataclass
class Samples:
    report: list[Any]
    sft: list[Any]
    collect: list[list[Any]]
    """The train-side questions each DPO round drafts on (round r is `collect[r - 1]`)."""


def draw_samples(
    task: Task,
    seed: int,
    *,
    n_report: int,
    n_sft: int,
    n_collect: int,
    rounds: int = 2,
    on: str = "report",
) -> Samples:
    """Draw the report, SFT and collection samples of one (task, seed) run.

    Each sample has its own random stream (seeded by task, seed and purpose), so the training data
    of a seed does not change with the number of report rows asked for; each DPO round draws its
    own collection questions (they may overlap across rounds). The report rows do not
    depend on the seed at all: every seed is measured on the same rows, so the spread across seeds
    is training variance only, and conditions of different seeds can be paired.

    >>> t = Task("t", ("a", "b"), list(range(50)), list(range(100)), "")
    >>> draw_samples(t, 0, n_report=10, n_sft=5, n_collect=5).sft == draw_samples(
    ...     t, 0, n_report=0, n_sft=5, n_collect=5).sft
    True
    """
    source = task.dev if on == "dev" else task.report
    if source is None:
        raise SystemExit(f"{task.name} has no dev slice (it is evaluation-only); use --on report")

    def draw(pool: list[Any], n: int, purpose: str) -> list[Any]:
        return random.Random(f"{task.name}:{seed}:{purpose}").sample(pool, min(n, len(pool)))

    fixed_report = random.Random(f"{task.name}:report").sample(source, min(n_report, len(source)))
    return Samples(
        report=fixed_report if n_report else list(source),
        sft=draw(task.train, n_sft, "sft"),
        collect=[draw(task.train, n_collect, f"collect:{r}") for r in range(1, rounds + 1)],
    )


def strong_for(task: Task, args: argparse.Namespace, served: Any) -> Any:
    """The strong chat model of a task: the 135M stand-in by label choice (`served` is None), the
    served model constrained to `Answer: <label>` (`--strong-answer label`), or free text."""
    from benchmarks.label_choice import LabelChoiceModel
    from cowest_graph.models.hf import load_hf_weak_model

    if served is None:
        return LabelChoiceModel(base=load_hf_weak_model(temperature=0.0), labels=task.labels)
    if not hasattr(served, "chat_model"):  # a chat model that is not served here
        return served
    if args.strong_answer == "label":
        return served.chat_model(max_tokens=8, extra_body={"grammar": label_grammar(task.labels)})
    return served.chat_model(max_tokens=args.strong_tokens)


def label_shares(answers: list[str], labels: tuple[str, ...]) -> dict[str, float]:
    """The share of answers naming each label: a condition that collapses onto one label shows it.

    >>> label_shares(["Answer: yes", "no", "Answer: yes", "?"], ("yes", "no"))
    {'yes': 0.5, 'no': 0.25}
    """
    from cowest_graph.critique import extract_label

    said = [extract_label(a, labels) for a in answers]
    return {lab: said.count(lab) / max(1, len(said)) for lab in labels}


def aligned_method(nll_weight: float) -> str:
    """The name of a round's training step: RPO (DPO plus the chosen drafts' NLL) is its own
    condition, never averaged with plain DPO."""
    return "DPO+NLL" if nll_weight > 0 else "DPO"


def max_length_for(target: str) -> int:
    """The token limit of a training row, for the SFT and DPO steps alike: a label answer fits
    512 tokens with its k-shot prompt, a rationale needs 1,024.

    >>> max_length_for("label"), max_length_for("rationale")
    (512, 1024)
    """
    return 512 if target == "label" else 1024


def sft_step(*, epochs: float, seed: int, target: str = "label") -> Any:
    """The weak model's domain SFT step (`benchmarks/backends.py` trains the same one): LoRA r=16,
    learning rate 1e-3, batches of 8; rationale targets (1,024 tokens) as 4 x 2 accumulated, since
    batch 8 of 1,024 tokens took 13 GB, and the OOM killer, next to a running benchmark.

    >>> step = sft_step(epochs=1.0, seed=0, target="rationale")
    >>> step.per_device_train_batch_size * step.gradient_accumulation_steps, step.max_length
    (8, 1024)
    """
    from cowest_graph.train import LoraSettings, SFTTrainConfig

    label = target == "label"
    return SFTTrainConfig(
        num_train_epochs=epochs,
        learning_rate=1e-3,
        per_device_train_batch_size=8 if label else 4,
        gradient_accumulation_steps=1 if label else 2,
        max_length=max_length_for(target),
        seed=seed,
        disable_tqdm=True,
        lora=LoraSettings(r=16, alpha=32),
    )


def dpo_step(*, learning_rate: float, nll_weight: float, seed: int, max_length: int = 512) -> Any:
    """The DPO step of every collaborative-feedback round (`benchmarks/dpo_variants.py` trains the
    same one): one epoch, batch 4; with `nll_weight > 0` the chosen drafts' NLL is added (RPO).

    >>> dpo_step(learning_rate=5e-5, nll_weight=1.0, seed=0).loss_type
    ('sigmoid', 'sft')
    """
    from cowest_graph.train import DPOTrainConfig

    loss: dict[str, Any] = {}
    if nll_weight > 0:
        loss = {"loss_type": ("sigmoid", "sft"), "loss_weights": (1.0, nll_weight)}
    return DPOTrainConfig(
        num_train_epochs=1,
        learning_rate=learning_rate,
        per_device_train_batch_size=4,
        max_length=max_length,
        seed=seed,
        disable_tqdm=True,
        **loss,
    )


def draft_influence(weak: Any, alone: Any, cowest: Any) -> dict[str, Any]:
    """How the strong model used the drafts, per question: CoWest's accuracy in each cell of
    (draft right?, strong alone right?). A draft that carries knowledge the strong model lacks
    shows up as questions where the draft is right, strong alone is wrong and CoWest is right."""
    cells: dict[str, Any] = {}
    for w in (1, 0):
        for a in (1, 0):
            idx = [
                i
                for i, (x, y) in enumerate(zip(weak.correct, alone.correct, strict=True))
                if (x, y) == (w, a)
            ]
            key = f"draft {'right' if w else 'wrong'}, alone {'right' if a else 'wrong'}"
            cells[key] = {"n": len(idx), "cowest_right": sum(cowest.correct[i] for i in idx)}
    return cells


def pair_labels(rows: Iterable[Mapping[str, Any]], labels: tuple[str, ...]) -> dict[str, dict[str, int]]:
    """The label each pair's chosen and rejected draft names ("none" when it names none): pairs
    that only teach a label prior show as chosen drafts that all name one label.

    >>> said = lambda text: [{"role": "assistant", "content": text}]
    >>> pair_labels([{"chosen": said("Answer: yes"), "rejected": said("Answer: no")}], ("yes", "no"))
    {'chosen': {'yes': 1, 'no': 0, 'none': 0}, 'rejected': {'yes': 0, 'no': 1, 'none': 0}}
    """
    from cowest_graph.critique import extract_label

    counts = {side: dict.fromkeys((*labels, "none"), 0) for side in ("chosen", "rejected")}
    for row in rows:
        for side, tally in counts.items():
            turn = row[side]
            text = turn[-1]["content"] if isinstance(turn, list) else str(turn)
            tally[extract_label(text, labels) or "none"] += 1
    return counts


def pair_readings(traces: Path, *, pairs: int, min_margin: float, labels: tuple[str, ...]) -> dict[str, Any]:
    """A kept round's `pair_report` and `pair_labels` read again from its own trace store, for a
    round trained before the run recorded them; empty, and said, when the store is gone, gives no
    pairs, or gives other pairs than the `pairs` the round was trained on (another store or settings).

    >>> pair_readings(Path("no-such-traces.db"), pairs=3, min_margin=0.0, labels=("a", "b"))
    {}
    """
    from cowest_graph.feedback import build_preference_pairs

    if not traces.exists():
        return {}
    try:
        rebuilt = build_preference_pairs(f"sqlite:///{traces}", min_margin=min_margin, eval_fraction=0.0)
    except ValueError as exc:  # no pairs at all
        print(f"  {traces.name}: {exc}: not read", flush=True)
        return {}
    if rebuilt.report.pairs != pairs:
        print(
            f"  {traces.name} gives {rebuilt.report.pairs} pairs, not the {pairs} trained on: not read",
            flush=True,
        )
        return {}
    return pair_record(rebuilt, labels)


def pair_record(pairs: Any, labels: tuple[str, ...]) -> dict[str, Any]:
    """What a round's pairs held, as its record keeps it: the `PairReport` (what was kept and dropped,
    and why) and the label each chosen / rejected draft names."""
    return {"pair_report": pairs.report.as_dict(), "pair_labels": pair_labels(pairs["train"], labels)}


def resumed_record(result: Any, key: str) -> dict[str, Any]:
    """`{key: step}` when a training went on from a checkpoint (its wall time then counts only the
    resuming process), else nothing.

    >>> from types import SimpleNamespace as NS
    >>> resumed_record(NS(metrics={"resumed_from_step": 25}), "dpo_resumed_from_step")
    {'dpo_resumed_from_step': 25}
    >>> resumed_record(NS(metrics={"resumed_from_step": None}), "resumed_from_step")
    {}
    """
    step = result.metrics.get("resumed_from_step")
    return {key: step} if step else {}


def balance_chosen_labels(pairs: Any, labels: tuple[str, ...], seed: int) -> Any:
    """The pairs cut so that every label is the chosen draft's label equally often: each label
    keeps as many pairs (drawn at random, `seed`) as the least-chosen label has, so a round cannot
    move the weak model by a label prior alone; pairs whose chosen draft names no label go too.
    Labels never chosen do not count (on a binary task both are, or nothing is left to balance).

    Returns new `PreferencePairs` (train only is cut) whose `report` counts what was dropped.

    Raises:
        ValueError: fewer than two labels are named by chosen drafts (nothing to balance against).

    >>> import datasets
    >>> from cowest_graph.influence import PairReport
    >>> from cowest_graph.pair_dataset import PreferencePairs
    >>> said = lambda text: [{"role": "assistant", "content": text}]
    >>> rows = [("a", "b")] * 3 + [("b", "a")]
    >>> pairs = PreferencePairs({"train": datasets.Dataset.from_list(
    ...     [{"chosen": said(c), "rejected": said(r)} for c, r in rows])})
    >>> pairs.report = PairReport(pairs=4, train_pairs=4)
    >>> cut = balance_chosen_labels(pairs, ("a", "b"), seed=0)
    >>> cut.report.pairs, pair_labels(cut["train"], ("a", "b"))["chosen"]
    (2, {'a': 1, 'b': 1, 'none': 0})
    """
    import copy

    from cowest_graph.critique import extract_label
    from cowest_graph.pair_dataset import PreferencePairs

    train = pairs["train"]
    by_label: dict[str | None, list[int]] = {}
    for i, turn in enumerate(train["chosen"]):
        by_label.setdefault(extract_label(turn[-1]["content"], labels), []).append(i)
    unnamed = by_label.pop(None, [])
    if len(by_label) < 2:
        raise ValueError(
            f"chosen drafts name {sorted(by_label) or 'no label'} only: no other label to balance against"
        )
    n = min(len(idx) for idx in by_label.values())
    rng = random.Random(seed)
    kept = sorted(i for label in sorted(by_label) for i in rng.sample(by_label[label], n))
    report = copy.deepcopy(pairs.report)
    if unnamed:
        report.drop("balance: chosen draft names no label", len(unnamed))
    over = train.num_rows - len(unnamed) - len(kept)
    if over:
        report.drop("balance: beyond the least-chosen label's count", over)
    report.train_pairs = len(kept)
    report.pairs = report.train_pairs + report.eval_pairs
    result = PreferencePairs({**pairs, "train": train.select(kept)})
    result.report = report
    return result


async def run_task(
    task: Task,
    args: argparse.Namespace,
    seed: int,
    work: Path,
    served_strong: Any = None,
    on_condition: Callable[[list[dict[str, Any]], dict[str, Any]], None] | None = None,
    earlier: tuple[list[dict[str, Any]], dict[str, Any] | None] | None = None,
    pairs_dir: Path | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One (task, seed) run; `served_strong` is the strong server (None: the 135M stand-in).

    Returns the condition rows and the run's extras (paired differences, draft influence, pairs).
    `on_condition(rows, extras)` is called after each condition with the rows so far and the extras
    marked `"partial": True`, so a caller can save them before the (task, seed) run ends.
    `earlier`: the rows and extras this (task, seed) left in the results file (`--append`), perhaps
    on another machine: its finished conditions are adopted (`RunFolder.adopt`) and kept while the
    adapters trained again here have the fingerprints of those they were measured with.
    `pairs_dir`: where each round keeps its pairs (`benchmarks/round_pairs.py`), so that a run of
    this (task, seed) elsewhere trains the round from them instead of collecting it again; None:
    nowhere."""
    from benchmarks.label_choice import ConfidenceLabelModel
    from benchmarks.resume import RunFolder, fingerprint, outcomes
    from benchmarks.round_pairs import load_round_pairs, pairs_path, save_round_pairs
    from cowest_graph import create_cowest_graph
    from cowest_graph.collect import acollect
    from cowest_graph.critique import label_match
    from cowest_graph.evaluate import (
        drafts_as_answers,
        evaluate_graph,
        evaluate_model_alone,
        label_judge,
        paired_difference,
    )
    from cowest_graph.feedback import build_preference_pairs
    from cowest_graph.models import load_weak_model
    from cowest_graph.models.hf import load_hf_weak_model
    from cowest_graph.models.messages import to_chat
    from cowest_graph.store import RunFilter
    from cowest_graph.tracing import CowestTracer
    from cowest_graph.train import train_dpo, train_sft

    n_report = dict(kv.split("=") for kv in args.n_report_for.split(",") if kv).get(task.name, args.n_report)
    samples = draw_samples(
        task,
        seed,
        n_report=int(n_report),
        n_sft=args.n_sft,
        n_collect=args.n_collect,
        rounds=args.rounds,
        on=args.on,
    )
    report = samples.report
    target = args.sft_target if task.trainable else "label"
    if target == "rationale":  # the SFT rows and the weak model's shots are answered with one
        needed = [*samples.sft, *shot_examples(task, args.shots, seed)]
        missing = [e.id for e in needed if not e.meta.get("rationale")]
        if missing:
            raise SystemExit(
                f"{len(missing)} of the {len(needed)} {task.name} SFT rows and shots of seed {seed} have "
                f"no rationale (first: {missing[0]}); write them first: python -m benchmarks.rationales "
                f"{task.name} --seeds {seed} --n-sft {args.n_sft} --shots {args.shots}"
            )
    prompts = task_prompts(task, args.shots, seed, weak_target=target)
    # The conditions' names say what the weak model was trained to write, so runs that trained it
    # on rationales never average with runs that trained it on labels.
    sft_tag = "SFT" if target == "label" else "SFT with rationales"
    trained = task.trainable
    suffix = f" ({sft_tag} weak)" if trained else ""
    weak_name = f"weak alone ({sft_tag})" if trained else "weak alone"
    method = aligned_method(args.nll_weight) + ("" if target == "label" else ", SFT with rationales")

    def round_names(k: int) -> tuple[str, str]:
        """Round k's conditions: its weak model alone, and its collaboration."""
        return f"weak alone ({method} round {k})", f"CoWest aligned ({method} round {k})"

    # A label fits in 512 tokens with PubMedQA's shots; a rationale (and its shots) does not, and
    # TRL cuts the end off, which is where the label is.
    max_length = max_length_for(target)
    judge = label_judge(task.labels)
    strong = strong_for(task, args, served_strong)
    results: list[dict[str, Any]] = []
    done: dict[str, Any] = {}  # condition name -> ConditionResult (per-question outcomes)
    extras: dict[str, Any] = {"task": task.name, "seed": seed, "strong_model": strong_name(args)}
    # What this (task, seed) run finished, kept so that a cut run goes on where it stopped.
    settings = run_settings(args, int(n_report))
    extras["settings"] = settings
    folder = RunFolder(work / f"{task.name}-s{seed}", settings)
    earlier_rows, earlier_extras = earlier or ([], None)
    earlier_extras = earlier_extras or {}
    adopted = folder.adopt(earlier_rows, earlier_extras.get("settings"), len(report))
    if adopted:
        print(f"  {task.name} seed {seed}: adopted from the results file: {', '.join(adopted)}", flush=True)
    earlier_shares = {r["name"]: r.get("label_shares") for r in earlier_rows}

    def still_same(step: str, adapter: Path, before: str | None, measured_with: Callable[[str], bool]) -> str:
        """The adapter's fingerprint; adopted conditions measured with the adapter an earlier run
        trained at this step are dropped (measured again) unless this one is the same."""
        now = fingerprint(adapter)
        stale = [name for name in adopted if measured_with(name)]
        if stale and now != before:
            print(
                f"  {task.name} seed {seed}: the {step} adapter trained here differs from the one "
                f"the adopted conditions were measured with ({before or 'not recorded'} there, "
                f"{now} here): measuring {', '.join(stale)} again",
                flush=True,
            )
            folder.forget(stale)
            adopted[:] = [name for name in adopted if name not in stale]
        return now

    def record(r: Any, *, kept: bool = False) -> None:
        if not kept:
            folder.save_condition(r)
        done[r.name] = r
        row = {"task": task.name, "seed": seed, "strong_model": strong_name(args), **r.summary()}
        if row["wall_s"] != row["wall_s"]:  # NaN: derived from another condition's drafts, not timed
            row["wall_s"] = None
        # An adopted condition has no answers of its own: its shares come from the row it came from.
        shares = label_shares(r.answers, task.labels) if r.answers else earlier_shares.get(r.name)
        row["label_shares"] = shares
        row["outcomes"] = outcomes(r.correct)  # so paired differences can be taken on any machine
        results.append(row)
        print(
            f"  {task.name} seed {seed} {r.name}: acc {r.accuracy:.3f} [{r.ci_low:.3f}, {r.ci_high:.3f}] "
            f"unparseable {r.unparseable_rate:.1%} wall {r.wall_s:.0f} s{KEPT if kept else ''}",
            flush=True,
        )
        checkpoint()

    def paired() -> list[dict[str, Any]]:
        """The paired differences of the conditions finished so far."""
        wanted = [
            ("strong alone", f"CoWest{suffix}"),
            (weak_name, f"CoWest{suffix}"),
            ("strong alone", next((n for n in done if n.startswith("SuperICL")), "")),
        ]
        # Each aligned round against the one before it, against the best single model's candidate
        # (strong alone), and the weak model it trained against the SFT one it started from.
        collaborations = [f"CoWest{suffix}"]
        for k in range(1, args.rounds + 1):
            round_weak, round_cowest = round_names(k)
            collaborations.append(round_cowest)
            wanted += [
                (collaborations[-2], round_cowest),
                ("strong alone", round_cowest),
                (weak_name, round_weak),
            ]
        return [paired_difference(done[a], done[b]) for a, b in wanted if a in done and b in done]

    def checkpoint() -> None:
        if on_condition is not None:
            on_condition(list(results), {**extras, "paired": paired(), "partial": True})

    async def evaluate(name: str, weak: Any, *, weak_alone: str | None = None) -> Any:
        before = folder.condition(name)
        before_weak = folder.condition(weak_alone) if weak_alone else None
        if before is not None and (weak_alone is None or before_weak is not None):
            if before_weak is not None:
                record(before_weak, kept=True)
            record(before, kept=True)
            return before
        graph = create_cowest_graph(weak, strong, scorer=label_match(task.labels), prompts=prompts).compile()
        tracer = CowestTracer(folder.condition_store(name))
        try:  # a condition cut midway goes on from the questions it had not answered
            r = await evaluate_graph(
                name,
                graph,
                report,
                judge=judge,
                labels=task.labels,
                concurrency=4,
                tracer=tracer,
                resume=True,
            )
        finally:
            tracer.store.close()
        if weak_alone:  # one greedy draft per question: exactly the weak model's own answer
            record(drafts_as_answers(weak_alone, r, report, judge=judge, labels=task.labels))
        record(r)
        return r

    alone = folder.condition("strong alone")
    if alone is not None:
        record(alone, kept=True)
    else:
        alone = await evaluate_model_alone(
            "strong alone",
            strong,
            report,
            judge=judge,
            labels=task.labels,
            prompts=prompts,
            counts_as_strong=True,
            concurrency=4,
        )
        record(alone)
    if trained:
        adapters = folder.path / "adapters"
        sft_rows = [{"question": e.question, "answer": sft_answer(e, target)} for e in samples.sft]
        t0 = time.perf_counter()
        sft_before = folder.step("sft")
        if sft_before is not None:  # trained by an earlier, cut run of this folder
            sft_dir = Path(sft_before["adapter"])
            extras["sft"] = {**sft_before["extras"], "adapter_sha256": fingerprint(sft_dir)}
        else:
            resumed: dict[str, Any] = {}  # the step a cut SFT went on from
            if args.sft_adapter:  # an earlier run's SFT adapter for this (task, seed): not trained again
                sft_dir = Path(args.sft_adapter)
                if not (sft_dir / "adapter_config.json").exists():
                    raise SystemExit(f"--sft-adapter {sft_dir}: no adapter there (no adapter_config.json)")
            else:
                sft = train_sft(
                    sft_rows,
                    output_dir=adapters,
                    prompts=prompts,
                    config=sft_step(epochs=args.sft_epochs, seed=seed, target=target),
                    resume=True,  # a cut SFT goes on from its last checkpoint
                )
                sft_dir, resumed = sft.adapter_dir, resumed_record(sft, "resumed_from_step")
            extras["sft"] = {
                "rows": len(sft_rows),
                "epochs": args.sft_epochs,
                "target": target,
                "wall_s": None if args.sft_adapter else time.perf_counter() - t0,  # of this process
                **resumed,
                **({"reused_adapter": str(sft_dir)} if args.sft_adapter else {}),
                "adapter_sha256": still_same(
                    "SFT",
                    sft_dir,
                    (earlier_extras.get("sft") or {}).get("adapter_sha256"),
                    lambda name: name != "strong alone",
                ),
            }
            folder.save_step("sft", {"adapter": str(sft_dir), "extras": extras["sft"]})
        print(f"  {task.name} seed {seed} SFT on {len(sft_rows)} rows: {extras['sft']}", flush=True)
    adapter = sft_dir if trained else None
    weak = load_weak_model(adapter=adapter, max_new_tokens=args.weak_tokens, temperature=0.0)
    cowest = await evaluate(f"CoWest{suffix}", weak, weak_alone=weak_name)
    weak_alone = done[weak_name]
    extras["draft_influence"] = draft_influence(weak_alone, alone, cowest)
    checkpoint()
    if args.supericl:
        hf = load_hf_weak_model(adapter=adapter, temperature=0.0)
        plug_in = await evaluate(
            f"SuperICL ({f'{sft_tag} ' if trained else ''}weak label + confidence)",
            ConfidenceLabelModel(base=hf, labels=task.labels),
        )
        # Its drafts hold the weak model's constrained label choice: the weak model alone, parsed
        # without fail (its free-text answers above may name no label).
        plug_in.drafts = [
            re.sub(r"(?s).*predicts: (\S+) \(confidence.*", r"Answer: \1", d) for d in plug_in.drafts
        ]
        choice_name = f"weak alone ({f'{sft_tag}, ' if trained else ''}label choice)"
        kept_choice = folder.condition(choice_name)
        if kept_choice is not None:  # kept beside SuperICL (an adopted SuperICL has no drafts)
            record(kept_choice, kept=True)
        else:
            record(drafts_as_answers(choice_name, plug_in, report, judge=judge, labels=task.labels))

    rounds: list[dict[str, Any]] = []
    extras["rounds"] = rounds  # in the partial extras too: a finished round's fingerprint travels
    if trained:
        parent = sft_dir
        for round_ in range(1, args.rounds + 1):
            before = folder.step(f"round-{round_}")
            if before is not None:  # collected and trained by an earlier, cut run of this folder
                parent = Path(before["adapter"])
                done_round = {**before["record"], "adapter_sha256": fingerprint(parent)}
                if "pair_report" not in done_round:  # trained before the run recorded it
                    readings = pair_readings(
                        folder.path / f"traces-round{round_}.db",
                        pairs=done_round["pairs"],
                        min_margin=args.min_margin,
                        labels=task.labels,
                    )
                    if readings:
                        done_round |= readings
                        folder.save_step(f"round-{round_}", {**before, "record": done_round})
            else:
                # Each round has its own trace store: a cut collection goes on with the questions
                # it has not traced yet (rounds may draw the same question).
                tracer = CowestTracer(f"sqlite:///{folder.path / f'traces-round{round_}.db'}")
                t0 = time.perf_counter()
                drafter = load_weak_model(
                    adapter=parent, max_new_tokens=args.weak_tokens, temperature=args.draft_temperature
                )
                graph = create_cowest_graph(
                    drafter,
                    strong,
                    scorer=label_match(task.labels),
                    prompts=prompts,
                    num_drafts=args.k,
                    measure_influence=True,
                ).compile()
                questions = samples.collect[round_ - 1]  # its own train-side questions

                def weak_prompt(question: str, drafter: Any = drafter) -> Any:
                    messages = prompts.weak_messages(question)
                    text, cut = drafter.render(messages)
                    return None if cut else (to_chat(messages), text)

                # Pairs a run of this (task, seed) collected on another machine: not collected again.
                pairs_file = pairs_path(pairs_dir, args.name, task.name, seed, round_) if pairs_dir else None
                parent_sha256 = fingerprint(parent)
                kept_pairs = (
                    load_round_pairs(
                        pairs_file,
                        questions={e.id: e.question for e in questions},
                        render=weak_prompt,
                        parent_sha256=parent_sha256,
                        settings=settings,
                    )
                    if pairs_file
                    else None
                )
                collected: Any = None
                if kept_pairs is not None:
                    pairs, collect_extras = kept_pairs
                    collect_s = collect_extras.get("collect_s")
                    print(f"  {task.name} round {round_}: {pairs.report.pairs} pairs kept in {pairs_file}")
                else:
                    collected = await acollect(graph, questions, tracer, concurrency=4, progress=False)
                    collect_s = time.perf_counter() - t0
                    try:
                        pairs = build_preference_pairs(
                            tracer.store,
                            min_margin=args.min_margin,
                            eval_fraction=0.0,
                            flt=RunFilter(adapter_version=drafter.adapter_version),
                        )
                    except ValueError as exc:
                        print(f"  {task.name} round {round_}: {exc}", flush=True)
                        rounds.append(
                            {"round": round_, "questions": len(questions), "pairs": 0, "error": str(exc)}
                        )
                        break
                    if pairs_file:
                        save_round_pairs(
                            pairs_file,
                            pairs,
                            ids={e.question: e.id for e in questions},
                            render=weak_prompt,
                            parent_sha256=parent_sha256,
                            settings=settings,
                            extras={"collect_s": None if collected.skipped else collect_s},
                        )
                how_collected: dict[str, Any] = {}
                if kept_pairs is not None and pairs_file:  # trained from pairs collected elsewhere
                    how_collected["pairs_from"] = pairs_file.name
                elif collected.skipped:  # a cut collection went on
                    how_collected["questions_traced_before"] = collected.skipped
                t1 = time.perf_counter()
                dpo = train_dpo(
                    pairs,
                    output_dir=adapters,
                    adapter=parent,
                    config=dpo_step(
                        learning_rate=args.dpo_lr,
                        nll_weight=args.nll_weight,
                        seed=seed,
                        max_length=max_length,
                    ),
                    resume=True,  # a cut round goes on from its last checkpoint
                )
                done_round = {
                    "round": round_,
                    "questions": len(questions),
                    "pairs": pairs.report.pairs,
                    "collect_s": collect_s,  # of this process: a cut collection's first part is not in it
                    "dpo_s": time.perf_counter() - t1,  # of this process, as collect_s
                    **resumed_record(dpo, "dpo_resumed_from_step"),
                    **pair_record(pairs, task.labels),
                    **how_collected,
                }
                parent = dpo.adapter_dir
                earlier_round = next(
                    (r for r in earlier_extras.get("rounds") or [] if r.get("round") == round_), {}
                )
                done_round["adapter_sha256"] = still_same(
                    f"round-{round_} DPO",
                    parent,
                    earlier_round.get("adapter_sha256"),
                    # measured with this round's adapter or one trained from it
                    lambda name, k=round_: bool(m := re.search(r"round (\d+)\)", name)) and int(m[1]) >= k,
                )
                folder.save_step(f"round-{round_}", {"adapter": str(parent), "record": done_round})
            rounds.append(done_round)
            print(
                f"  {task.name} seed {seed} round {round_}: {done_round}{KEPT if before else ''}",
                flush=True,
            )
            checkpoint()  # the round (pairs, adapter fingerprint) reaches the results file before (4)/(5)
            aligned = load_weak_model(adapter=parent, max_new_tokens=args.weak_tokens, temperature=0.0)
            aligned_weak, aligned_cowest = round_names(round_)
            collaboration = await evaluate(aligned_cowest, aligned, weak_alone=aligned_weak)
            results[-1]["pairs"] = done_round["pairs"]
            # How the strong model used the aligned drafts, as for CoWest above.
            done_round["draft_influence"] = draft_influence(done[aligned_weak], alone, collaboration)
            checkpoint()

    extras["paired"] = paired()
    return results, extras


def pooled_interval(outcomes: list[str], *, n_boot: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% interval of the mean accuracy over seeds by a two-level bootstrap: seeds drawn with
    replacement, then each drawn seed's questions with replacement (so the seed-to-seed spread
    counts, which averaging the seeds' own bounds leaves out).

    >>> low, high = pooled_interval(["1" * 52 + "0" * 48, "1" * 65 + "0" * 35])
    >>> low < 0.52 and high > 0.65
    True
    """
    rng = random.Random(seed)
    seeds = [[int(c) for c in o] for o in outcomes]
    means = []
    for _ in range(n_boot):
        drawn = [rng.choice(seeds) for _ in seeds]
        means.append(statistics.mean(statistics.mean(rng.choices(d, k=len(d))) for d in drawn))
    means.sort()
    return means[int(0.025 * n_boot)], means[min(n_boot - 1, int(0.975 * n_boot))]


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (task, condition, report size): seeds are averaged only over equal-size reports.

    The interval of one seed is that seed's own; of several, the two-level bootstrap of
    `pooled_interval` when every seed kept its per-question outcomes, else none (`ci_low` and
    `ci_high` None, each seed's own in `seed_cis`). A macro-F1 is averaged only when every seed has one."""
    out = []
    names = [r["name"] for r in rows]
    keys = sorted(
        {(r["task"], r["name"], r["n"]) for r in rows}, key=lambda k: (k[0], -k[2], names.index(k[1]))
    )
    for task, name, n in keys:
        mine = [r for r in rows if (r["task"], r["name"], r["n"]) == (task, name, n)]
        accs = [r["accuracy"] for r in mine]
        out.append(
            {
                "task": task,
                "condition": name,
                "seeds": len(mine),
                "accuracy": statistics.mean(accs),
                "seed_min": min(accs),
                "seed_max": max(accs),
                **_interval(mine),
                "macro_f1": None
                if any(r["macro_f1"] is None for r in mine)
                else statistics.mean(r["macro_f1"] for r in mine),
                "unparseable": statistics.mean(r["unparseable_rate"] for r in mine),
                "strong_calls_per_q": statistics.mean(r["strong_calls_per_q"] for r in mine),
                "strong_tokens_per_q": statistics.mean(r["strong_tokens_per_q"] for r in mine),
                "wall_s": statistics.mean(w)
                if (w := [r["wall_s"] for r in mine if r["wall_s"] is not None])
                else None,
                "n": n,
            }
        )
    return out


def _interval(mine: list[dict[str, Any]]) -> dict[str, Any]:
    """The pooled interval fields of `summarise` (see there)."""
    if len(mine) == 1:
        return {"ci_low": mine[0]["ci_low"], "ci_high": mine[0]["ci_high"], "ci": "per question"}
    if all(r.get("outcomes") for r in mine):
        low, high = pooled_interval([r["outcomes"] for r in mine])
        return {"ci_low": low, "ci_high": high, "ci": "bootstrap over seeds and questions"}
    return {
        "ci_low": None,
        "ci_high": None,
        "ci": "per seed",
        "seed_cis": [[r["ci_low"], r["ci_high"]] for r in mine],
    }


def _ci_cell(s: dict[str, Any]) -> str:
    if s["ci_low"] is not None:
        return f"[{s['ci_low']:.3f}, {s['ci_high']:.3f}]"
    return "per seed " + " / ".join(f"[{lo:.3f}, {hi:.3f}]" for lo, hi in s["seed_cis"])


def markdown(summary: list[dict[str, Any]]) -> str:
    head = (
        "| task | condition | n | accuracy (seed range) | 95% CI | macro-F1 | unparseable | strong calls/q "
        "| strong tokens/q | wall s |\n|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = [
        f"| {s['task']} | {s['condition']} | {s['n']} "
        f"| {s['accuracy']:.3f} ({s['seed_min']:.3f}-{s['seed_max']:.3f}) "
        f"| {_ci_cell(s)} | {'-' if s['macro_f1'] is None else format(s['macro_f1'], '.3f')} "
        f"| {s['unparseable']:.1%} "
        f"| {s['strong_calls_per_q']:.2f} | {s['strong_tokens_per_q']:.0f} "
        f"| {'-' if s['wall_s'] is None else format(s['wall_s'], '.0f')} |"
        for s in summary
    ]
    return head + "\n".join(lines) + "\n"


def paired_markdown(extras: list[dict[str, Any]]) -> str:
    """The paired differences of every (task, seed) run, and how the strong model used the drafts."""
    if not any(e.get("paired") for e in extras):
        return ""
    out = [
        "\n| task | seed | second - first | diff | 95% CI | only 2nd right | only 1st right | McNemar p |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for e in extras:
        for p in e.get("paired", []):
            out.append(
                f"| {e['task']} | {e['seed']} | {p['second']} - {p['first']} | {p['difference']:+.3f} "
                f"| [{p['ci_low']:+.3f}, {p['ci_high']:+.3f}] | {p['second_only']} | {p['first_only']} "
                f"| {p['mcnemar_p']:.3g} |"
            )
    out += [
        "",
        "| task | seed | collaboration | draft, strong alone | questions | collaboration right |",
        "|---|---|---|---|---|---|",
    ]
    for e in extras:
        cells = [("CoWest", e.get("draft_influence"))]
        cells += [(f"aligned round {r['round']}", r.get("draft_influence")) for r in e.get("rounds") or []]
        for name, influence in cells:
            for cell, v in (influence or {}).items():
                row = f"| {e['task']} | {e['seed']} | {name} | {cell} | {v['n']} | {v['cowest_right']} |"
                out.append(row)
    return "\n".join(out) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The run's settings, with `--quick`'s and the weak-token defaults filled in.

    >>> a = parse_args(["--quick", "--sft-target", "rationale"])
    >>> a.tasks, a.on, a.weak_tokens, parse_args([]).weak_tokens
    ('ethics,pubmedqa', 'dev', 96, 48)
    """
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="small samples on the dev slice, one seed, one DPO round"
    )
    parser.add_argument("--tasks", default="ethics,pubmedqa,crass")
    parser.add_argument(
        "--on", choices=("report", "dev"), default="report", help="evaluate on the report split or dev"
    )
    parser.add_argument("--n-dev", type=int, default=100, help="train-side rows held out as dev")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--first-seed", type=int, default=0, help="the first seed to run")
    parser.add_argument(
        "--append", action="store_true", help="add to the runs already in the results JSON (other seeds)"
    )
    parser.add_argument("--n-report", type=int, default=0, help="report rows per task (0: all)")
    parser.add_argument(
        "--n-report-for", default="", help="per-task report rows, e.g. 'ethics=500,pubmedqa=250'"
    )
    parser.add_argument("--n-sft", type=int, default=800)
    parser.add_argument("--n-collect", type=int, default=200)
    parser.add_argument("--sft-epochs", type=float, default=1.0)
    parser.add_argument(
        "--sft-adapter",
        default=None,
        help="reuse an earlier run's SFT adapter (same task, seed and SFT settings): no training",
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--work",
        default=None,
        help="the run's work folder (adapters, traces, finished conditions); a cut run's folder goes on "
        "where it stopped (default: a new temporary folder, printed at the start)",
    )
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--shots", type=int, default=2)
    parser.add_argument(
        "--weak-tokens",
        type=int,
        default=None,
        help="tokens per weak draft (default 48, --quick 32; three times that with rationales)",
    )
    parser.add_argument(
        "--sft-target",
        choices=SFT_TARGETS,
        default="label",
        help="what the weak model learns to write: the label, or the data set's rationale then the label "
        "(PubMedQA: the abstract's conclusion)",
    )
    parser.add_argument("--context-chars", type=int, default=600)
    parser.add_argument(
        "--strong",
        default="standin",
        help="standin (SmolLM2-135M by constrained label choice) | qwen (Qwen2.5-Coder-1.5B on llama.cpp, "
        "free text parsed for its final 'Answer:') | any spec that --strong takes on the CLI",
    )
    parser.add_argument(
        "--strong-answer",
        choices=("label", "free"),
        default="label",
        help="served strong model: label (a grammar admits only 'Answer: <label>') or free text (parsed)",
    )
    parser.add_argument("--strong-tokens", type=int, default=24, help="tokens per free-text strong answer")
    parser.add_argument("--draft-temperature", type=float, default=1.0, help="weak sampling when collecting")
    parser.add_argument("--min-margin", type=float, default=0.5, help="pair margin (label match: 0 or 1)")
    parser.add_argument("--dpo-lr", type=float, default=2e-4, help="learning rate of each DPO round")
    parser.add_argument(
        "--nll-weight",
        type=float,
        default=0.0,
        help="weight of an NLL term on the chosen drafts beside the DPO loss (RPO; 0: plain DPO); "
        "its rounds are named 'DPO+NLL'",
    )
    parser.add_argument(
        "--supericl",
        action="store_true",
        help="also run the SuperICL-style peer baseline: the weak model's label and confidence as the draft",
    )
    parser.add_argument(
        "--name",
        default="",
        help="results file stem under benchmarks/results (default: quality, or quality_quick with --quick)",
    )
    args = parser.parse_args(argv)
    args.name = args.name or ("quality_quick" if args.quick else "quality")
    if args.quick:
        args.seeds, args.n_report, args.n_sft, args.n_collect = 1, 30, 32, 12
        args.rounds, args.sft_epochs, args.context_chars = 1, 1.0, 300
        args.on = "dev"
        if args.tasks == parser.get_default("tasks"):
            args.tasks = "ethics,pubmedqa"  # CRASS is evaluation-only: it has no dev slice
    trained_tasks = [t for t in args.tasks.split(",") if t != "crass"]  # CRASS trains nothing
    if args.sft_adapter and (args.seeds != 1 or len(trained_tasks) != 1):
        parser.error(
            f"--sft-adapter is one (task, seed)'s adapter: give one trained task and --seeds 1 "
            f"(got --tasks {args.tasks} --seeds {args.seeds})"
        )
    if args.weak_tokens is None:  # rationales need room before the final 'Answer:' line
        args.weak_tokens = (32 if args.quick else 48) * (1 if args.sft_target == "label" else 3)
    return args


def main() -> None:
    from benchmarks.rationales import rationale_path, read_rationales

    args = parse_args()
    loaders = {
        "ethics": lambda: load_ethics(
            read_rationales(rationale_path("ethics")) if args.sft_target == "rationale" else None
        ),
        "pubmedqa": lambda: load_pubmedqa(args.context_chars),
        "crass": load_crass,
    }
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="cowest-quality-"))
    print(f"work folder: {work} (--work {work} goes on from there if this run is cut)", flush=True)
    rows: list[dict[str, Any]] = []
    extras: list[dict[str, Any]] = []
    commands: list[dict[str, Any]] = []
    previous = RESULTS / f"{args.name}.json"
    if args.append and previous.exists():
        earlier = json.loads(previous.read_text())
        rows = earlier["runs"]
        extras = earlier.get("run_extras", [])
        commands = earlier.get("commands") or [{"settings": earlier["settings"], "wall_s": earlier["wall_s"]}]
    start = time.perf_counter()

    async def run_all(served_strong: Any) -> None:
        nonlocal rows, extras

        def save_so_far(got: list[dict[str, Any]], extra: dict[str, Any]) -> None:
            # A (task, seed) run can take hours: a cut one keeps the conditions it finished.
            write_results([*rows, *got], [*extras, extra], commands, args, start, quiet=True)

        for name in args.tasks.split(","):
            task = split_dev(loaders[name](), args.n_dev)
            seeds = range(args.first_seed, args.first_seed + (args.seeds if task.trainable else 1))
            for seed in seeds:
                # --append keeps other tasks and seeds; a (task, seed) run again replaces its rows,
                # adopting the conditions they hold (measured perhaps on another machine).
                mine = [r for r in rows if (r["task"], r["seed"]) == (name, seed)]
                mine_extra = next((e for e in extras if (e["task"], e["seed"]) == (name, seed)), None)
                rows = [r for r in rows if (r["task"], r["seed"]) != (name, seed)]
                extras = [e for e in extras if (e["task"], e["seed"]) != (name, seed)]
                print(f"{name}: seed {seed}", flush=True)
                got, extra = await run_task(
                    task,
                    args,
                    seed,
                    work,
                    served_strong,
                    save_so_far,
                    earlier=(mine, mine_extra),
                    pairs_dir=RESULTS / "pairs",
                )
                rows.extend(got)
                extras.append(extra)
                write_results(rows, extras, commands, args, start)

    # One event loop for the whole run: ChatOpenAI caches one async HTTP client per endpoint,
    # bound to the loop that first used it.
    if args.strong == "standin":
        asyncio.run(run_all(None))
        return
    from cowest_graph.models.strong import local_strong, open_strong_model, serves_locally

    if serves_locally(args.strong):
        with local_strong(args.strong) as server:  # each task asks it for its own chat model
            asyncio.run(run_all(server))
        return
    with open_strong_model(args.strong, max_tokens=args.strong_tokens) as served:
        asyncio.run(run_all(served))


def write_results(
    rows: list[dict[str, Any]],
    extras: list[dict[str, Any]],
    commands: list[dict[str, Any]],
    args: argparse.Namespace,
    start: float,
    *,
    quiet: bool = False,
) -> None:
    """Write JSON, Markdown and PNG for the rows so far (called after every condition and every
    (task, seed) run, so a long run that is cut short keeps what it finished; a (task, seed) run not
    yet finished has `"partial": true` in its extras). `commands` are the earlier invocations whose rows
    `--append` kept; this one is added with its settings and wall time so far. `quiet`: no table printed."""
    summary = summarise(rows)
    table = markdown(summary) + paired_markdown(extras)
    if not quiet:
        print(table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.name}.md").write_text(table)
    path = save(
        args.name,
        {
            "summary": summary,
            "runs": rows,
            "paired": [
                {"task": e["task"], "seed": e["seed"], **p} for e in extras for p in e.get("paired", [])
            ],
            "run_extras": extras,
            "commands": [
                *commands,
                {"settings": vars(args), "wall_s": time.perf_counter() - start},
            ],
            "strong_model": strong_name(args),
        },
    )
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        tasks = sorted({s["task"] for s in summary})
        fig, axes = plt.subplots(1, len(tasks), figsize=(4.5 * len(tasks), 3.6), squeeze=False)
        for ax, task in zip(axes[0], tasks, strict=True):
            mine = [s for s in summary if s["task"] == task]
            ax.bar(
                range(len(mine)),
                [s["accuracy"] for s in mine],
                yerr=[  # no bar where the seeds kept no outcomes to pool (see `summarise`)
                    [0.0 if s["ci_low"] is None else s["accuracy"] - s["ci_low"] for s in mine],
                    [0.0 if s["ci_high"] is None else s["ci_high"] - s["accuracy"] for s in mine],
                ],
                capsize=3,
            )
            sizes = {s["n"] for s in mine}
            labels = [s["condition"] + (f" (n={s['n']})" if len(sizes) > 1 else "") for s in mine]
            ax.set_xticks(range(len(mine)), labels, rotation=30, ha="right", fontsize=7)
            ax.set_ylim(0, 1)
            ax.set_title(task)
        fig.tight_layout()
        fig.savefig(RESULTS / f"{args.name}.png", dpi=110)
        plt.close(fig)  # written after every condition: an open figure each time adds up
    except ImportError:
        pass
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
