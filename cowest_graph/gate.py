"""The promotion gate: a candidate adapter replaces the current one only when it is better on the
same held-out questions, by a paired test, and no guard regresses.

Guards: the unparseable rate, the mean answer length, and the accuracy of every category the eval
file names (an `Example.meta["category"]`). A copy of the current adapter is never promoted: with
no question answered differently, there is no evidence of improvement.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from cowest_graph.data import Example
from cowest_graph.evaluate import ConditionResult, paired_difference


@dataclass
class GateConfig:
    """When a candidate is promoted.

    Example:
        >>> GateConfig(alpha=0.1).alpha
        0.1
    """

    alpha: float = 0.05
    """Level of McNemar's exact test (two-sided) on the questions the two answer differently."""
    max_unparseable_increase: float = 0.02
    """Largest allowed rise of the unparseable rate (absolute)."""
    max_length_ratio: float = 1.5
    """Largest allowed ratio of mean answer lengths (candidate / current, in characters)."""
    max_category_drop: float = 0.0
    """Largest allowed accuracy drop in any named category (absolute)."""


@dataclass
class GateDecision:
    """The gate's verdict and everything it was based on (JSON-ready with `as_dict`)."""

    promote: bool
    reasons: list[str]
    paired: dict[str, Any]
    current: dict[str, Any]
    candidate: dict[str, Any]
    categories: dict[str, dict[str, float]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def gate_decision(
    current: ConditionResult,
    candidate: ConditionResult,
    examples: Sequence[Example],
    config: GateConfig | None = None,
) -> GateDecision:
    """Compare two evaluated conditions on the same questions and decide.

    Example:
        >>> cur = ConditionResult("current", 4, 0.25, 0, 1, None, 0, 0, 0, 0, correct=[1, 0, 0, 0],
        ...                       answers=["a"] * 4)
        >>> gate_decision(cur, cur, [Example(str(i), "q") for i in range(4)]).promote
        False
    """
    config = config or GateConfig()
    paired = paired_difference(current, candidate)
    reasons: list[str] = []
    if paired["difference"] <= 0:
        reasons.append(f"not better: accuracy {candidate.accuracy:.3f} vs {current.accuracy:.3f}")
    elif paired["mcnemar_p"] >= config.alpha:
        reasons.append(
            f"not significant: +{paired['difference']:.3f} ({paired['second_only']} questions gained, "
            f"{paired['first_only']} lost), McNemar p = {paired['mcnemar_p']:.3g} >= {config.alpha}"
        )
    rise = candidate.unparseable_rate - current.unparseable_rate
    if rise > config.max_unparseable_increase:
        reasons.append(f"unparseable rate rose by {rise:.3f} (> {config.max_unparseable_increase})")
    length = {name: _mean_length(r.answers) for name, r in (("current", current), ("candidate", candidate))}
    growth = length["candidate"] / length["current"] if length["current"] > 0 else 1.0
    if growth > config.max_length_ratio:
        reasons.append(f"answers grew {growth:.2f}x longer (> {config.max_length_ratio}x)")
    categories = _by_category(examples, current.correct, candidate.correct)
    for name, acc in sorted(categories.items()):
        if acc["current"] - acc["candidate"] > config.max_category_drop:
            reasons.append(f"category {name!r} fell from {acc['current']:.3f} to {acc['candidate']:.3f}")
    summary = {
        "current": {**current.summary(), "mean_answer_chars": length["current"]},
        "candidate": {**candidate.summary(), "mean_answer_chars": length["candidate"]},
    }
    return GateDecision(not reasons, reasons, paired, summary["current"], summary["candidate"], categories)


def _mean_length(answers: Sequence[str]) -> float:
    return sum(len(a) for a in answers) / len(answers) if answers else 0.0


def _by_category(
    examples: Sequence[Example], current: Sequence[int], candidate: Sequence[int]
) -> dict[str, dict[str, float]]:
    groups: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for example, a, b in zip(examples, current, candidate, strict=True):
        category = example.meta.get("category")
        if category is not None:
            groups[str(category)].append((a, b))
    return {
        name: {
            "n": len(rows),
            "current": sum(a for a, _ in rows) / len(rows),
            "candidate": sum(b for _, b in rows) / len(rows),
        }
        for name, rows in groups.items()
    }
