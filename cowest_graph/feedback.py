"""Collaborative-feedback preference pairs from traces (CoWest, section 3).

The influence of a draft is the paper's Delta = E(strong refining this draft) - E(strong alone)
when the run measured `strong_alone`, else the draft's own critique score. Within one weak prompt,
a draft with higher influence is chosen over one with lower influence when the gap is at least
`min_margin`; a draft with Delta > 0 against one with Delta <= 0 (the paper's basic pair) comes
first. The prompt of a pair is the exact weak prompt recorded in the trace; for a weak model that
records only messages (any LangChain chat model: `ChatHuggingFace`, `ChatOpenAI` on vLLM or
llama.cpp), it is rendered at pair time with the chat template of the model being trained
(`tokenizer=`), and the report names that template.
"""

from __future__ import annotations

import hashlib
import json
import random
import sqlite3
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

from cowest_graph.models import chat_role
from cowest_graph.pair_dataset import PreferencePairs, stream_to_dataset
from cowest_graph.store import RunFilter, TraceStore, open_trace_store


@dataclass
class PairReport:
    """What `build_preference_pairs` found, kept and dropped."""

    runs: int = 0
    drafts: int = 0
    scored_drafts: int = 0
    prompts: int = 0
    pairs: int = 0
    train_pairs: int = 0
    eval_pairs: int = 0
    mean_delta: float | None = None
    used_strong_alone: int = 0
    """Drafts whose influence is a true Delta (the run measured `strong_alone`)."""
    dropped: dict[str, int] = field(default_factory=dict)
    """Why drafts or candidate pairs were dropped, with counts."""
    rendered_at_pair_time: int = 0
    """Drafts whose trace held only messages, rendered here with `template`."""
    template: str | None = None
    """`<model id> chat template sha256:<12 hex>`, when any prompt was rendered here."""

    def drop(self, reason: str, n: int = 1) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + n

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Draft:
    run_id: str
    pos: int
    """Index of the draft in its record's `drafts` list."""
    question: str
    prompt: list[dict[str, str]]
    prompt_text: str
    text: str
    score: float
    influence: float
    is_delta: bool
    adapter_version: str | None


class _Renderer:
    """Renders recorded messages with the trained model's chat template; checks the model id."""

    def __init__(self, tokenizer: Any, model_id: str | None) -> None:
        self.tokenizer, self.model_id = tokenizer, model_id
        template = (getattr(tokenizer, "chat_template", None) or "") if tokenizer is not None else ""
        digest = hashlib.sha256(str(template).encode()).hexdigest()[:12]
        name = model_id or getattr(tokenizer, "name_or_path", "") or "tokenizer"
        self.template = f"{name} chat template sha256:{digest}"

    def check(self, record: dict[str, Any], draft: dict[str, Any]) -> None:
        drafted_by = draft.get("weak_model") or record.get("weak_model")
        if self.model_id and drafted_by and drafted_by != self.model_id:
            raise ValueError(
                f"run {record.get('run_id')} was drafted by weak model {drafted_by!r}, not by "
                f"{self.model_id!r} being trained: select its runs (flt=RunFilter(model=...))"
            )

    def __call__(self, messages: list[dict[str, str]]) -> str:
        return str(self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))


def draft_influences(
    record: dict[str, Any], report: PairReport | None = None, renderer: _Renderer | None = None
) -> list[_Draft]:
    """The usable drafts of one trace with their influence (Delta or score)."""
    report = report or PairReport()
    alone = record.get("alone") or {}
    alone_score = alone.get("score")
    candidates = {c.get("id"): c for c in record.get("candidates") or []}
    out: list[_Draft] = []
    for pos, draft in enumerate(record.get("drafts") or []):
        report.drafts += 1
        cand = candidates.get(draft.get("id")) or {}
        messages = draft.get("rendered_messages") or draft.get("prompt_messages")
        if renderer is not None:
            renderer.check(record, draft)
        if not messages:
            report.drop("draft has no recorded weak prompt")
            continue
        prompt = [{"role": chat_role(m["role"]), "content": m["content"]} for m in messages]
        prompt_text = draft.get("rendered_prompt")
        if not prompt_text:
            if renderer is None or renderer.tokenizer is None:
                report.drop("draft has only messages (pass tokenizer= to render them)")
                continue
            prompt_text = renderer(prompt)
            report.rendered_at_pair_time += 1
            report.template = renderer.template
        if not (draft.get("text") or "").strip():
            report.drop("empty draft")
            continue
        if cand.get("error"):
            report.drop("refinement failed")
            continue
        score = cand.get("score")
        if score is None:
            report.drop("answer unscored")
            continue
        report.scored_drafts += 1
        is_delta = alone_score is not None
        out.append(
            _Draft(
                run_id=str(record.get("run_id")),
                pos=pos,
                question=str(record.get("question") or ""),
                prompt=prompt,
                prompt_text=prompt_text,
                text=draft["text"],
                score=float(score),
                influence=float(score) - float(alone_score) if alone_score is not None else float(score),
                is_delta=is_delta,
                adapter_version=draft.get("adapter_version"),
            )
        )
    return out


_Entry = tuple[int, float, int]
"""One usable draft in the first pass: (key of its stripped text, influence, ref). A ref is
`run index << 16 | position of the draft in its run`; the draft's text stays in the store."""


def _key(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def _pairs_for_prompt(
    drafts: list[_Entry], min_margin: float, max_pairs: int, report: PairReport
) -> list[tuple[int, int, float, float]]:
    """(chosen ref, rejected ref, chosen influence, rejected influence) of one prompt's pairs."""
    # Duplicates (same prompt, same text, e.g. from several runs) collapse to their first draft,
    # whose influence is their mean.
    by_text: dict[int, list[Any]] = {}
    for text_key, influence, ref in drafts:
        same = by_text.get(text_key)
        if same is None:
            by_text[text_key] = [ref, influence, 1]
        else:
            same[1] += influence
            same[2] += 1
            report.drop("duplicate draft text")
    unique = [(ref, total / n) for ref, total, n in by_text.values()]
    if len(unique) < 2:
        report.drop("prompt has a single distinct draft")
        return []
    options: list[tuple[bool, float, tuple[int, int, float, float]]] = []
    for a, b in combinations(unique, 2):
        if a[1] < b[1]:
            a, b = b, a
        gap = a[1] - b[1]
        if gap == 0:
            report.drop("tie")
        elif gap < min_margin:
            report.drop("gap below min_margin")
        else:
            basic = a[1] > 0 >= b[1]
            options.append((basic, gap, (a[0], b[0], a[1], b[1])))
    if not options:
        return []
    options.sort(key=lambda o: (o[0], o[1]), reverse=True)  # basic pairs first, then widest gap
    if len(options) > max_pairs:
        report.drop("over max_pairs_per_prompt", len(options) - max_pairs)
    return [pair for _, _, pair in options[:max_pairs]]


def build_preference_pairs(
    source: TraceStore | str | Iterable[dict[str, Any]],
    *,
    min_margin: float = 0.1,
    max_pairs_per_prompt: int = 4,
    eval_fraction: float = 0.1,
    seed: int = 0,
    flt: RunFilter | None = None,
    tokenizer: Any = None,
    model_id: str | None = None,
) -> PreferencePairs:
    """Turn traces into DPO pairs in TRL's conversational preference format.

    Memory stays bounded by the number of drafts, not their text: a first pass over the runs
    keeps, per weak prompt, a hash of each draft's text, its influence and where it lies; the
    pairs are chosen from that; a second pass fetches the texts of the paired drafts into a
    temporary SQLite file, and the splits stream from it into Arrow (`Dataset.from_generator`).
    A store is read twice; any other iterable is read once into a list.

    Args:
        source: a trace store, its URL, or an iterable of trace records.
        min_margin: the least influence gap for a pair (scores are in [0, 1]).
        max_pairs_per_prompt: at most this many pairs per weak prompt.
        eval_fraction: share of questions held out (grouped: a question is never in both).
        seed: makes the split deterministic.
        flt: which runs of the store to use (e.g. `RunFilter(adapter_version="v0001")`).
        tokenizer: the trained weak model's tokenizer; drafts whose trace holds only messages
            (a generic chat model as the weak model) are rendered with its chat template.
        model_id: the trained weak model's id; a run drafted by another model is refused.

    Returns:
        `PreferencePairs` (a `DatasetDict` with `train` and `eval`, columns `prompt`, `chosen`,
        `rejected` plus `question`, run ids, scores, Deltas, `margin`, `prompt_text`), and the
        `report` of what was kept and dropped.

    Example:
        >>> pairs = build_preference_pairs("sqlite:///traces.db", min_margin=0.2)  # doctest: +SKIP
        >>> pairs.report.pairs, pairs["train"].column_names[:3]  # doctest: +SKIP
        (42, ['prompt', 'chosen', 'rejected'])
    """
    if min_margin < 0:
        raise ValueError(f"min_margin must be >= 0, got {min_margin}")
    if max_pairs_per_prompt < 1:
        raise ValueError(f"max_pairs_per_prompt must be >= 1, got {max_pairs_per_prompt}")
    if not 0.0 <= eval_fraction < 1.0:
        raise ValueError(f"eval_fraction must be in [0, 1), got {eval_fraction}")
    store = open_trace_store(source, create=False) if isinstance(source, str) else source
    if isinstance(store, TraceStore):
        store_: TraceStore = store

        def records() -> Iterator[dict[str, Any]]:
            return store_.iter_runs(flt)
    else:
        held = store if isinstance(store, Sequence) else list(store)

        def records() -> Iterator[dict[str, Any]]:
            return iter(held)

    report = PairReport()
    renderer = _Renderer(tokenizer, model_id) if tokenizer is not None or model_id else None

    # Pass 1: per prompt, (text key, influence, ref) of every usable draft; no text is kept.
    groups: dict[int, list[_Entry]] = defaultdict(list)
    question_of: dict[int, str] = {}
    run_index: dict[str, int] = {}
    delta_sum, delta_n = 0.0, 0
    for record in records():
        report.runs += 1
        for d in draft_influences(record, report, renderer):
            if d.pos >= 1 << 16:
                report.drop("beyond 65,536 drafts in one run")
                continue
            index = run_index.setdefault(d.run_id, len(run_index))
            prompt_key = _key(d.prompt_text)
            groups[prompt_key].append((_key(d.text.strip()), d.influence, index << 16 | d.pos))
            question_of.setdefault(prompt_key, d.question)
            delta_sum += d.influence
            delta_n += 1
            report.used_strong_alone += d.is_delta
    report.prompts = len(groups)
    report.mean_delta = delta_sum / delta_n if delta_n else None

    pairs: list[tuple[int, int, int, float, float]] = []  # (prompt key, chosen, rejected, Deltas)
    for prompt_key in sorted(groups):
        for chosen, rejected, d_chosen, d_rejected in _pairs_for_prompt(
            groups.pop(prompt_key), min_margin, max_pairs_per_prompt, report
        ):
            pairs.append((prompt_key, chosen, rejected, d_chosen, d_rejected))
    if not pairs:
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted(report.dropped.items())) or "none"
        raise ValueError(
            f"no preference pairs: {report.runs} runs, {report.drafts} drafts, "
            f"{report.scored_drafts} scored; dropped ({reasons})"
        )
    questions = sorted({question_of[p[0]] for p in pairs})
    random.Random(seed).shuffle(questions)
    n_eval = round(len(questions) * eval_fraction)
    if eval_fraction > 0 and n_eval == 0 and len(questions) >= 2:
        n_eval = 1
    held_out = set(questions[:n_eval])
    needed = {ref for p in pairs for ref in p[1:3]}

    with tempfile.TemporaryDirectory(prefix="cowest-pairs-") as tmp:
        texts = sqlite3.connect(Path(tmp) / "drafts.db")
        # Pass 2: the paired drafts' texts, into a file instead of memory.
        texts.execute(
            "CREATE TABLE d (ref INTEGER PRIMARY KEY, run_id TEXT, question TEXT, prompt TEXT, "
            "prompt_text TEXT, text TEXT, score REAL, adapter_version TEXT)"
        )
        for record in records():
            found = run_index.get(str(record.get("run_id")))
            if found is None:
                continue  # written after the first pass
            for d in draft_influences(record, PairReport(), renderer):
                ref = found << 16 | d.pos
                if ref in needed:
                    texts.execute(
                        "INSERT OR IGNORE INTO d VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            ref,
                            d.run_id,
                            d.question,
                            json.dumps(d.prompt),
                            d.prompt_text,
                            d.text,
                            d.score,
                            d.adapter_version or "",
                        ),
                    )
        texts.commit()

        def rows(split: str) -> Iterator[dict[str, Any]]:
            for prompt_key, chosen, rejected, d_chosen, d_rejected in pairs:
                if (question_of[prompt_key] in held_out) != (split == "eval"):
                    continue
                got = {
                    ref: row
                    for ref, *row in texts.execute(
                        "SELECT ref, run_id, question, prompt, prompt_text, text, score, "
                        "adapter_version FROM d WHERE ref IN (?, ?)",
                        (chosen, rejected),
                    )
                }
                if len(got) < 2:
                    report.drop("run changed while reading")
                    continue
                c, r = got[chosen], got[rejected]
                yield {
                    "prompt": json.loads(c[2]),
                    "chosen": [{"role": "assistant", "content": c[4]}],
                    "rejected": [{"role": "assistant", "content": r[4]}],
                    "question": c[1],
                    "prompt_text": c[3],
                    "run_id_chosen": c[0],
                    "run_id_rejected": r[0],
                    "score_chosen": c[5],
                    "score_rejected": r[5],
                    "delta_chosen": d_chosen,
                    "delta_rejected": d_rejected,
                    "margin": d_chosen - d_rejected,
                    "adapter_version": c[6],
                }

        try:
            n_evals = sum(question_of[p[0]] in held_out for p in pairs)
            splits = {
                "train": stream_to_dataset(rows, "train", len(pairs) - n_evals),
                "eval": stream_to_dataset(rows, "eval", n_evals),
            }
        finally:
            texts.close()
    report.train_pairs, report.eval_pairs = splits["train"].num_rows, splits["eval"].num_rows
    report.pairs = report.train_pairs + report.eval_pairs
    result = PreferencePairs(splits)
    result.report = report
    return result
