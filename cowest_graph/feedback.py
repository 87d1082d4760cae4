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
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from itertools import combinations
from typing import Any

import datasets

from cowest_graph.models import chat_role
from cowest_graph.store import RunFilter, TraceStore, open_trace_store

PAIR_COLUMNS = ("prompt", "chosen", "rejected")
"""The columns TRL's DPOTrainer needs (conversational format)."""


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


class PreferencePairs(datasets.DatasetDict):
    """A `DatasetDict` with `train` / `eval` splits and the `report` that built it."""

    report: PairReport

    def save_to_disk(self, dataset_dict_path: Any, *args: Any, **kwargs: Any) -> None:
        """Save the splits that hold pairs: `datasets` cannot load back a split saved with 0 rows
        (a small store often gives no eval pairs), and `load_pairs` treats a missing eval as none.
        """
        kept = {name: split for name, split in self.items() if split.num_rows > 0}
        datasets.DatasetDict(kept or dict(self)).save_to_disk(dataset_dict_path, *args, **kwargs)


@dataclass
class _Draft:
    run_id: str
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
    for draft in record.get("drafts") or []:
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
                question=str(record.get("question") or ""),
                prompt=prompt,
                prompt_text=prompt_text,
                text=draft["text"],
                score=float(score),
                influence=float(score) - float(alone_score) if is_delta else float(score),
                is_delta=is_delta,
                adapter_version=draft.get("adapter_version"),
            )
        )
    return out


def _pairs_for_prompt(
    drafts: list[_Draft], min_margin: float, max_pairs: int, report: PairReport
) -> list[tuple[_Draft, _Draft]]:
    # Duplicates (same prompt, same text, e.g. from several runs) collapse to one draft whose
    # influence is their mean.
    by_text: dict[str, list[_Draft]] = defaultdict(list)
    for d in drafts:
        by_text[d.text.strip()].append(d)
    unique: list[_Draft] = []
    for same in by_text.values():
        if len(same) > 1:
            report.drop("duplicate draft text", len(same) - 1)
        first = same[0]
        mean = sum(d.influence for d in same) / len(same)
        unique.append(_Draft(**{**asdict(first), "influence": mean}))
    if len(unique) < 2:
        report.drop("prompt has a single distinct draft")
        return []
    options: list[tuple[bool, float, _Draft, _Draft]] = []
    for a, b in combinations(unique, 2):
        if a.influence < b.influence:
            a, b = b, a
        gap = a.influence - b.influence
        if gap == 0:
            report.drop("tie")
        elif gap < min_margin:
            report.drop("gap below min_margin")
        else:
            basic = a.influence > 0 >= b.influence
            options.append((basic, gap, a, b))
    if not options:
        return []
    options.sort(key=lambda o: (o[0], o[1]), reverse=True)  # basic pairs first, then widest gap
    if len(options) > max_pairs:
        report.drop("over max_pairs_per_prompt", len(options) - max_pairs)
    return [(a, b) for _, _, a, b in options[:max_pairs]]


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
        >>> pairs = build_preference_pairs("sqlite:///traces.db", min_margin=0.2)
        >>> pairs.report.pairs, pairs["train"].column_names[:3]  # doctest: +SKIP
        (42, ['prompt', 'chosen', 'rejected'])
    """
    if min_margin < 0:
        raise ValueError(f"min_margin must be >= 0, got {min_margin}")
    if max_pairs_per_prompt < 1:
        raise ValueError(f"max_pairs_per_prompt must be >= 1, got {max_pairs_per_prompt}")
    if not 0.0 <= eval_fraction < 1.0:
        raise ValueError(f"eval_fraction must be in [0, 1), got {eval_fraction}")
    store = open_trace_store(source) if isinstance(source, str) else source
    records: Iterable[dict[str, Any]] = store.iter_runs(flt) if isinstance(store, TraceStore) else store
    report = PairReport()
    renderer = _Renderer(tokenizer, model_id) if tokenizer is not None or model_id else None
    groups: dict[str, list[_Draft]] = defaultdict(list)
    deltas: list[float] = []
    for record in records:
        report.runs += 1
        for d in draft_influences(record, report, renderer):
            groups[d.prompt_text].append(d)
            deltas.append(d.influence)
            report.used_strong_alone += d.is_delta
    report.prompts = len(groups)
    report.mean_delta = sum(deltas) / len(deltas) if deltas else None

    rows: list[dict[str, Any]] = []
    for prompt_text in sorted(groups):
        for chosen, rejected in _pairs_for_prompt(
            groups[prompt_text], min_margin, max_pairs_per_prompt, report
        ):
            rows.append(
                {
                    "prompt": chosen.prompt,
                    "chosen": [{"role": "assistant", "content": chosen.text}],
                    "rejected": [{"role": "assistant", "content": rejected.text}],
                    "question": chosen.question,
                    "prompt_text": prompt_text,
                    "run_id_chosen": chosen.run_id,
                    "run_id_rejected": rejected.run_id,
                    "score_chosen": chosen.score,
                    "score_rejected": rejected.score,
                    "delta_chosen": chosen.influence,
                    "delta_rejected": rejected.influence,
                    "margin": chosen.influence - rejected.influence,
                    "adapter_version": chosen.adapter_version or "",
                }
            )
    report.pairs = len(rows)
    if not rows:
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted(report.dropped.items())) or "none"
        raise ValueError(
            f"no preference pairs: {report.runs} runs, {report.drafts} drafts, "
            f"{report.scored_drafts} scored; dropped ({reasons})"
        )
    questions = sorted({r["question"] for r in rows})
    random.Random(seed).shuffle(questions)
    n_eval = round(len(questions) * eval_fraction)
    if eval_fraction > 0 and n_eval == 0 and len(questions) >= 2:
        n_eval = 1
    held_out = set(questions[:n_eval])
    train = [r for r in rows if r["question"] not in held_out]
    evals = [r for r in rows if r["question"] in held_out]
    report.train_pairs, report.eval_pairs = len(train), len(evals)
    features = _pair_features()
    result = PreferencePairs({"train": _to_dataset(train, features), "eval": _to_dataset(evals, features)})
    result.report = report
    return result


def _to_dataset(rows: list[dict[str, Any]], features: datasets.Features) -> datasets.Dataset:
    if not rows:  # from_list cannot infer the columns of an empty list
        return datasets.Dataset.from_dict({name: [] for name in features}, features=features)
    return datasets.Dataset.from_list(rows, features=features)


def _pair_features() -> datasets.Features:
    turn = {"role": datasets.Value("string"), "content": datasets.Value("string")}
    return datasets.Features(
        {
            "prompt": datasets.List(turn),
            "chosen": datasets.List(turn),
            "rejected": datasets.List(turn),
            "question": datasets.Value("string"),
            "prompt_text": datasets.Value("string"),
            "run_id_chosen": datasets.Value("string"),
            "run_id_rejected": datasets.Value("string"),
            "score_chosen": datasets.Value("float64"),
            "score_rejected": datasets.Value("float64"),
            "delta_chosen": datasets.Value("float64"),
            "delta_rejected": datasets.Value("float64"),
            "margin": datasets.Value("float64"),
            "adapter_version": datasets.Value("string"),
        }
    )


def dataset_hash(ds: datasets.Dataset, columns: Iterable[str] = PAIR_COLUMNS) -> str:
    """A stable hash of the given columns of a dataset (recorded in adapter manifests).

    Example:
        >>> len(dataset_hash(pairs["train"]))  # doctest: +SKIP
        64
    """
    digest = hashlib.sha256()
    cols = [c for c in columns if c in ds.column_names]
    for row in ds.select_columns(cols):
        digest.update(json.dumps(row, sort_keys=True).encode())
    return digest.hexdigest()
