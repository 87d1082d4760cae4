"""The influence of each draft in a trace: the paper's Delta = E(strong refining this draft) -
E(strong alone) when the run measured `strong_alone`, else the draft's own critique score; and
the exact weak prompt the draft came from (rendered with the trained model's chat template when
the trace holds only messages). `build_preference_pairs` (feedback.py) pairs drafts by it."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any

from cowest_graph.models import chat_role


@dataclass
class PairReport:
    """What `build_preference_pairs` found, kept and dropped."""

    runs: int = 0
    drafts: int = 0
    scored_drafts: int = 0
    prompts: int = 0
    prompts_with_pairs: int = 0
    """Weak prompts that gave at least one pair (the prompts kept)."""
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
class InfluencedDraft:
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


class PromptRenderer:
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
    record: dict[str, Any], report: PairReport | None = None, renderer: PromptRenderer | None = None
) -> list[InfluencedDraft]:
    """The usable drafts of one trace with their influence (Delta or score)."""
    report = report or PairReport()
    alone = record.get("alone") or {}
    alone_score = alone.get("score")
    candidates = {c.get("id"): c for c in record.get("candidates") or []}
    out: list[InfluencedDraft] = []
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
            InfluencedDraft(
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
