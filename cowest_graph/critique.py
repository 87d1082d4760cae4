"""Scoring answers: reference-based scorers and the LLM judge's output parser.

Every score is normalised to [0, 1]. A scorer is any callable
`scorer(question, answer, reference) -> float | None`; it raises `ValueError` when it cannot
score (e.g. no reference), which the critique node records as the candidate's `score_error`.
"""

from __future__ import annotations

import json
import re
import string
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

Scorer = Callable[[str, str, str | None], float | None]
"""`scorer(question, answer, reference) -> score in [0, 1]` (or None when it cannot score)."""

_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """Lower-case, drop punctuation, articles and extra spaces (SQuAD-style).

    Example:
        >>> normalize_answer("The  Eiffel Tower!")
        'eiffel tower'
    """
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    return " ".join(_ARTICLES.sub(" ", text).split())


def _need_reference(reference: str | None, name: str) -> str:
    if reference is None or not str(reference).strip():
        raise ValueError(f"{name} needs a reference answer and the run has none")
    return str(reference)


def exact_match(question: str, answer: str, reference: str | None) -> float:
    """1.0 when the normalised answer equals the normalised reference, else 0.0.

    Example:
        >>> exact_match("q", "Paris.", "paris")
        1.0
    """
    ref = _need_reference(reference, "exact_match")
    return float(normalize_answer(answer) == normalize_answer(ref))


def contains_match(question: str, answer: str, reference: str | None) -> float:
    """1.0 when the normalised reference appears as a whole phrase in the normalised answer.

    For short keyword references ("Thursday", "Finance Warden") inside free-text answers.

    Example:
        >>> contains_match("q", "They are due on Thursday.", "thursday")
        1.0
    """
    ref = normalize_answer(_need_reference(reference, "contains_match"))
    if not ref:
        raise ValueError("contains_match needs a non-empty reference after normalisation")
    return float(f" {ref} " in f" {normalize_answer(answer)} ")


def token_f1(question: str, answer: str, reference: str | None) -> float:
    """Token-level F1 between the normalised answer and reference (SQuAD-style).

    Example:
        >>> round(token_f1("q", "the cat sat", "a cat sat down"), 2)
        0.8
    """
    ref_tokens = normalize_answer(_need_reference(reference, "token_f1")).split()
    ans_tokens = normalize_answer(answer).split()
    common = sum((Counter(ans_tokens) & Counter(ref_tokens)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(ans_tokens), common / len(ref_tokens)
    return 2 * precision * recall / (precision + recall)


_NUMBER_WORDS = {
    w: i
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
        "sixteen seventeen eighteen nineteen twenty".split()
    )
}
_TIME = re.compile(r"\b(\d{1,2})[:.h](\d{2})\b")
_NUMBER = re.compile(r"(?<![\w.])-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|(?<![\w.])-?\d+(?:\.\d+)?")


def final_answer(text: str) -> str:
    r"""The part of a reply that commits to an answer: the first line after the last `Answer:`
    marker, else the last non-empty line.

    Example:
        >>> final_answer("Due Thursday, today Monday: 3 days.\nAnswer: 3")
        '3'
        >>> final_answer("It is due on Thursday.")
        'It is due on Thursday.'
    """
    markers = list(re.finditer(r"answer\s*(?:is)?\s*[:\-]", text or "", re.IGNORECASE))
    if markers:
        rest = text[markers[-1].end() :].strip()
        return rest.splitlines()[0].strip() if rest else ""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _first_number(text: str) -> float | None:
    found = _NUMBER.search(text)
    if found:
        return float(found.group(0).replace(",", ""))
    for word in re.findall(r"[a-z]+", text.lower()):
        if word in _NUMBER_WORDS:
            return float(_NUMBER_WORDS[word])
    return None


def answer_match(question: str, answer: str, reference: str | None) -> float:
    r"""1.0 when the reply's final answer (see `final_answer`) is the reference.

    A clock time (`11:15`) must be the first time named; a number must be the first number named
    (digits, `1,200`, or a word up to twenty); anything else (a weekday, a name) must appear as a
    whole phrase. For short factual answers after reasoning: "...so 3 days remain. Answer: 3".

    Example:
        >>> answer_match("q", "Thursday minus Monday.\nAnswer: 3 days", "3")
        1.0
        >>> answer_match("q", "Answer: 13 days", "3")
        0.0
        >>> answer_match("q", "Answer: at 9:35 am", "09:35")
        1.0
    """
    ref = _need_reference(reference, "answer_match").strip()
    final = final_answer(answer)
    ref_time = _TIME.fullmatch(ref)
    if ref_time:
        got = _TIME.search(final)
        return float(got is not None and (int(got[1]), got[2]) == (int(ref_time[1]), ref_time[2]))
    if _NUMBER.fullmatch(ref):
        without_times = _TIME.sub(" ", final)
        number = _first_number(without_times)
        return float(number is not None and number == float(ref.replace(",", "")))
    return contains_match(question, final, ref)


def _label_list_pattern(alternatives: str, flags: int) -> re.Pattern[str]:
    """Two or more labels joined only by list separators: "'A', 'B', 'C' or 'D'", "yes or no"."""
    label = r"['\"(]?(?:" + alternatives + r")['\")]?"
    sep = r"\s*(?:,|/|\bor\b|\band\b)\s*(?:or\s+)?"
    return re.compile(r"(?<![A-Za-z0-9])" + label + r"(?:" + sep + label + r")+(?![A-Za-z0-9])", flags)


def extract_label(text: str, labels: Sequence[str]) -> str | None:
    """The label an answer commits to, or None when it names none (an unparseable answer).

    An echoed instruction that lists labels ("End with 'Answer: A', 'B', 'C' or 'D'.", "yes or
    no") is no answer and is ignored. With `Answer:` markers, the label right after the last marker
    counts, unless the markers are followed by different labels (None). Without a marker, a word
    label counts when the reply opens or ends with it; a single-letter label (A-D) counts only as a
    capital after a marker, in parentheses, alone on a line ("B", "B)", "B.") or named as a choice
    ("option B", "choice (b)", "I'd go with B"), so the article "a" is never choice A. Word labels
    match case-insensitively; the label is returned as spelled in `labels`.

    Example:
        >>> extract_label("Reasoning... Answer: (B) because", ["A", "B", "C", "D"])
        'B'
        >>> extract_label("I think yes.", ["yes", "no", "maybe"])
        'yes'
        >>> extract_label("Reply 'Answer: yes' or 'Answer: no'.", ["yes", "no", "maybe"]) is None
        True
        >>> extract_label("I have no idea, it is a guess.", ["A", "B", "C", "D"]) is None
        True
        >>> extract_label("I would pick option B, since a dog barks.", ["A", "B", "C", "D"])
        'B'
    """
    if not text:
        return None
    letters = all(len(lab) == 1 for lab in labels)
    flags = 0 if letters else re.IGNORECASE
    alternatives = "|".join(re.escape(lab) for lab in labels)
    by_lower = {lab.lower(): lab for lab in labels}
    text = _label_list_pattern(alternatives, flags).sub(" ", text)
    markers = list(re.finditer(r"answer\s*(?:is)?\s*[:\-]?", text, re.IGNORECASE))
    following = re.compile(r"[^\w\n]{0,3}(" + alternatives + r")(?![A-Za-z0-9])", flags)
    committed = [m.group(1).lower() for mk in markers if (m := following.match(text, mk.end()))]
    if len(set(committed)) > 1:
        return None
    if committed:
        return by_lower[committed[-1]]
    if letters:
        standalone = re.compile(
            r"\(\s*(?i:(" + alternatives + r"))\s*\)|^[^\w\n]*(" + alternatives + r")[^\w\n]*$|"
            r"^\s*(" + alternatives + r")[.)]\s",
            re.MULTILINE,
        )
        # "option B", "choice (b)", "I'd go with B": a letter named as a choice (a capital after a
        # verb, so "go with a friend" names none).
        named = re.compile(
            r"\b(?i:option|choice)\s*\(?\s*(?i:(" + alternatives + r"))\s*\)?(?![A-Za-z0-9])|"
            r"\b(?i:go with|pick|choose|select|opt for)\s+\(?(" + alternatives + r")\)?(?![A-Za-z0-9])"
        )
        tail = text[markers[-1].end() :] if markers else text
        found = {
            next(g for g in m.groups() if g).lower()
            for pattern in (standalone, named)
            for m in pattern.finditer(tail)
        }
        if not markers and not found:
            return None
        return by_lower[found.pop()] if len(found) == 1 else None
    word = re.compile(r"(?<![A-Za-z0-9])(" + alternatives + r")(?![A-Za-z0-9])", flags)
    if markers:
        found_after = word.search(text[markers[-1].end() :])
        if found_after:
            return by_lower[found_after.group(1).lower()]
    words = re.findall(r"[A-Za-z0-9]+", text)
    for candidate in (words[:1], words[-1:]):
        if candidate and candidate[0].lower() in by_lower:
            return by_lower[candidate[0].lower()]
    return None


@dataclass(frozen=True)
class LabelMatch:
    """Scorer for classification / multiple choice: 1.0 when the answer's label is the reference.

    Example:
        >>> LabelMatch(("yes", "no", "maybe"))("q", "Answer: no", "no")
        1.0
    """

    labels: tuple[str, ...]

    def __call__(self, question: str, answer: str, reference: str | None) -> float:
        ref = _need_reference(reference, "label_match")
        got = extract_label(answer, self.labels)
        if got is None:
            raise ValueError(f"answer names none of the labels {list(self.labels)}")
        return float(got.lower() == ref.strip().lower())


def label_match(labels: Sequence[str]) -> LabelMatch:
    """A scorer that compares the label an answer commits to with the reference label.

    Example:
        >>> label_match(["yes", "no"])("q", "No, it is not.", "no")
        1.0
    """
    if not labels:
        raise ValueError("labels must name at least one label")
    return LabelMatch(tuple(labels))


choice_match = label_match(["A", "B", "C", "D"])
"""Scorer for 4-way multiple choice answered with a letter."""


class JudgeParseError(ValueError):
    """The judge's reply holds no usable score; the message says why."""


_REFUSAL = re.compile(r"\b(I can(?:no|')t|I am unable|I'm unable|I won't|as an AI)\b", re.I)


def parse_judge_output(text: str, *, scale: float = 10.0) -> tuple[float, str]:
    """Parse a judge reply into `(score in [0, 1], rationale)`.

    Accepts a JSON object with `score` (0..scale) and `rationale`, anywhere in the reply, or a
    plain `score: N` line. Raises `JudgeParseError` for an empty reply, a refusal, no score, or a
    score out of range.

    Example:
        >>> parse_judge_output('Sure. {"score": 7, "rationale": "mostly right"}')
        (0.7, 'mostly right')
    """
    if not text or not text.strip():
        raise JudgeParseError("judge reply is empty")
    score: float | None = None
    rationale = ""
    for match in re.finditer(r"\{[^{}]*\}", text, re.DOTALL):
        try:
            obj = json.loads(match.group(0))
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict) and "score" in obj:
            try:
                score = float(obj["score"])
            except (TypeError, ValueError) as exc:
                raise JudgeParseError(f"judge score is not a number: {obj['score']!r}") from exc
            rationale = str(obj.get("rationale", "")).strip()
            break
    if score is None:
        plain = re.search(r"score\s*[:=]\s*(-?\d+(?:\.\d+)?)", text, re.IGNORECASE)
        if plain:
            score = float(plain.group(1))
            rationale = text.strip()
    if score is None:
        if _REFUSAL.search(text):
            raise JudgeParseError("judge refused to grade")
        raise JudgeParseError("judge reply has no score")
    if not 0 <= score <= scale:
        raise JudgeParseError(f"judge score {score:g} is outside 0..{scale:g}")
    return score / scale, rationale
