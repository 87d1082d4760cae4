"""Statistics of paired evaluations: intervals for a proportion, paired differences with McNemar's
exact test, and the Holm correction across a table's comparisons."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any, Protocol


class Outcomes(Protocol):
    """A condition's name and per-question outcomes (1 right, 0 wrong): what a paired test reads."""

    @property
    def name(self) -> str: ...

    @property
    def correct(self) -> list[int]: ...


def paired_difference(
    first: Outcomes, second: Outcomes, *, n_boot: int = 2000, seed: int = 0, alpha: float = 0.05
) -> dict[str, Any]:
    """`second - first` accuracy on the same questions: paired bootstrap interval and McNemar's
    exact test (two-sided binomial test on the questions where exactly one condition is right).

    Example:
        >>> from cowest_graph.evaluate import ConditionResult
        >>> a = ConditionResult("a", 4, 0.25, 0, 1, None, 0, 0, 0, 0, correct=[1, 0, 0, 0])
        >>> b = ConditionResult("b", 4, 0.75, 0, 1, None, 0, 0, 0, 0, correct=[1, 1, 1, 0])
        >>> d = paired_difference(a, b)
        >>> d["difference"], d["second_only"], d["first_only"], d["mcnemar_p"]
        (0.5, 2, 0, 0.5)
    """
    import math

    if len(first.correct) != len(second.correct) or not first.correct:
        raise ValueError(
            f"paired comparison needs the same questions: {first.name!r} has {len(first.correct)}, "
            f"{second.name!r} has {len(second.correct)}"
        )
    diffs = [b - a for a, b in zip(first.correct, second.correct, strict=True)]
    low, high = bootstrap_ci(diffs, n_boot=n_boot, seed=seed, alpha=alpha)
    second_only = sum(d > 0 for d in diffs)
    first_only = sum(d < 0 for d in diffs)
    discordant = second_only + first_only
    tail = sum(math.comb(discordant, i) for i in range(min(second_only, first_only) + 1)) / 2**discordant
    return {
        "first": first.name,
        "second": second.name,
        "n": len(diffs),
        "difference": sum(diffs) / len(diffs),
        "ci_low": low,
        "ci_high": high,
        "second_only": second_only,
        "first_only": first_only,
        "mcnemar_p": min(1.0, 2 * tail),
    }


def wilson_interval(successes: int, n: int, *, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval of a proportion (95% by default): unlike the percentile bootstrap,
    it does not collapse to a point at 0 or n successes.

    Example:
        >>> low, high = wilson_interval(1, 48)
        >>> round(low, 4), round(high, 4)
        (0.0037, 0.109)
    """
    if n <= 0:
        return (float("nan"), float("nan"))
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * ((p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (family-wise error across the comparisons), in input order.

    Example:
        >>> holm([0.01, 0.04, 0.03])
        [0.03, 0.06, 0.06]
    """
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [0.0] * len(p_values)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        adjusted[i] = round(running, 12)
    return adjusted


def bootstrap_ci(
    values: Sequence[float], *, n_boot: int = 2000, seed: int = 0, alpha: float = 0.05
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean.

    Example:
        >>> low, high = bootstrap_ci([1, 0, 1, 1, 0, 1, 1, 1])
        >>> low < 0.75 < high
        True
    """
    if not values:
        return (float("nan"), float("nan"))
    rng = random.Random(seed)
    n = len(values)
    means = sorted(sum(rng.choices(values, k=n)) / n for _ in range(n_boot))
    return means[int(alpha / 2 * n_boot)], means[min(n_boot - 1, int((1 - alpha / 2) * n_boot))]
