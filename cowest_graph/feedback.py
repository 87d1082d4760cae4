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
from array import array
from collections.abc import Iterable, Iterator
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

from cowest_graph.influence import PairReport, PromptRenderer, draft_influences
from cowest_graph.pair_dataset import PreferencePairs, stream_to_dataset
from cowest_graph.store import RunFilter, TraceStore, open_trace_store


class _Group:
    """One weak prompt's usable drafts, packed in arrays (24 bytes a draft): the key of each
    draft's stripped text, its influence, and its ref (`run index << 16 | position in its run`).
    The texts stay in the store until the second pass."""

    __slots__ = ("influences", "question", "refs", "texts")

    def __init__(self, question: str) -> None:
        self.question = question
        self.texts = array("Q")
        self.influences = array("d")
        self.refs = array("q")


def _key(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def _pairs_for_prompt(
    group: _Group, min_margin: float, max_pairs: int, report: PairReport, require_contrast: bool = False
) -> list[tuple[int, int, float, float]]:
    """(chosen ref, rejected ref, chosen influence, rejected influence) of one prompt's pairs."""
    # Duplicates (same prompt, same text, e.g. from several runs) collapse to their first draft,
    # whose influence is their mean.
    by_text: dict[int, list[Any]] = {}
    for text_key, influence, ref in zip(group.texts, group.influences, group.refs, strict=True):
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
    if require_contrast and not (any(d > 0 for _, d in unique) and any(d <= 0 for _, d in unique)):
        report.drop("prompt without both a helping and a non-helping draft")
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
            if require_contrast and not basic:
                report.drop("not a helping vs non-helping pair")
                continue
            options.append((basic, gap, (a[0], b[0], a[1], b[1])))
    if not options:
        return []
    options.sort(key=lambda o: (o[0], o[1]), reverse=True)  # basic pairs first, then widest gap
    if len(options) > max_pairs:
        report.drop("over max_pairs_per_prompt", len(options) - max_pairs)
    return [pair for _, _, pair in options[:max_pairs]]


def _store_paired_drafts(
    texts: sqlite3.Connection,
    records: Iterable[dict[str, Any]],
    run_index: dict[str, int],
    needed: np.ndarray,
    renderer: PromptRenderer | None,
) -> None:
    """Pass 2: the drafts whose refs are in `needed` (sorted), with their prompts and texts, into
    the table `d` of `texts` (a file, not memory)."""
    texts.execute(
        "CREATE TABLE d (ref INTEGER PRIMARY KEY, run_id TEXT, question TEXT, prompt TEXT, "
        "prompt_text TEXT, text TEXT, score REAL, adapter_version TEXT)"
    )
    for record in records:
        found = run_index.get(str(record.get("run_id")))
        if found is None:
            continue  # written after the first pass
        for d in draft_influences(record, PairReport(), renderer):
            ref = found << 16 | d.pos
            i = int(np.searchsorted(needed, ref))
            if i < len(needed) and int(needed[i]) == ref:
                texts.execute(
                    "INSERT OR IGNORE INTO d VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (ref, d.run_id, d.question, json.dumps(d.prompt), d.prompt_text, d.text, d.score,
                     d.adapter_version or ""),
                )  # fmt: skip
    texts.commit()


def build_preference_pairs(
    source: TraceStore | str | Iterable[dict[str, Any]],
    *,
    min_margin: float = 0.1,
    max_pairs_per_prompt: int = 4,
    require_contrast: bool = False,
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
    A store, or any iterable that can be iterated again (a list, an object whose `__iter__` reads
    a store afresh), is read twice; a one-shot iterator (a generator) is read once into a list.

    Args:
        source: a trace store, its URL, or an iterable of trace records.
        min_margin: the least influence gap for a pair (scores are in [0, 1]).
        max_pairs_per_prompt: at most this many pairs per weak prompt.
        require_contrast: keep only prompts with both a draft that helped (Delta > 0) and one
            that did not (Delta <= 0), and only such pairs (M-Pilot's filter: a prompt whose
            drafts all helped or all failed teaches nothing about which draft is better).
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
        held = store if iter(store) is not store else list(store)

        def records() -> Iterator[dict[str, Any]]:
            return iter(held)

    report = PairReport()
    renderer = PromptRenderer(tokenizer, model_id) if tokenizer is not None or model_id else None

    # Pass 1: per prompt, (text key, influence, ref) of every usable draft; no text is kept.
    groups: dict[int, _Group] = {}
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
            group = groups.get(prompt_key)
            if group is None:
                group = groups[prompt_key] = _Group(d.question)
            group.texts.append(_key(d.text.strip()))
            group.influences.append(d.influence)
            group.refs.append(index << 16 | d.pos)
            delta_sum += d.influence
            delta_n += 1
            report.used_strong_alone += d.is_delta
    report.prompts = len(groups)
    report.mean_delta = delta_sum / delta_n if delta_n else None

    # The pairs, packed: prompt key, chosen and rejected refs, their Deltas.
    p_key, p_chosen, p_rejected = array("Q"), array("q"), array("q")
    p_dc, p_dr = array("d"), array("d")
    question_of: dict[int, str] = {}  # of the prompts that gave pairs
    for prompt_key in sorted(groups):
        group = groups.pop(prompt_key)
        for chosen, rejected, d_chosen, d_rejected in _pairs_for_prompt(
            group, min_margin, max_pairs_per_prompt, report, require_contrast
        ):
            question_of[prompt_key] = group.question
            p_key.append(prompt_key)
            p_chosen.append(chosen)
            p_rejected.append(rejected)
            p_dc.append(d_chosen)
            p_dr.append(d_rejected)
    if not p_key:
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted(report.dropped.items())) or "none"
        raise ValueError(
            f"no preference pairs: {report.runs} runs, {report.drafts} drafts, "
            f"{report.scored_drafts} scored; dropped ({reasons})"
        )
    questions = sorted(set(question_of.values()))
    random.Random(seed).shuffle(questions)
    n_eval = round(len(questions) * eval_fraction)
    if eval_fraction > 0 and n_eval == 0 and len(questions) >= 2:
        n_eval = 1
    held_out = set(questions[:n_eval])
    needed = np.unique(
        np.concatenate([np.frombuffer(p_chosen, np.int64), np.frombuffer(p_rejected, np.int64)])
    )

    with tempfile.TemporaryDirectory(prefix="cowest-pairs-") as tmp:
        texts = sqlite3.connect(Path(tmp) / "drafts.db")
        try:
            _store_paired_drafts(texts, records(), run_index, needed, renderer)

            def rows(split: str) -> Iterator[dict[str, Any]]:
                for prompt_key, chosen, rejected, d_chosen, d_rejected in zip(
                    p_key, p_chosen, p_rejected, p_dc, p_dr, strict=True
                ):
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

            n_evals = sum(question_of[k] in held_out for k in p_key)
            splits = {
                "train": stream_to_dataset(rows, "train", len(p_key) - n_evals),
                "eval": stream_to_dataset(rows, "eval", n_evals),
            }
        finally:
            texts.close()
    report.prompts_with_pairs = len(question_of)
    report.train_pairs, report.eval_pairs = splits["train"].num_rows, splits["eval"].num_rows
    report.pairs = report.train_pairs + report.eval_pairs
    result = PreferencePairs(splits)
    result.report = report
    return result
