"""Scorers and the judge-output parser."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cowest_graph.critique import (
    JudgeParseError,
    choice_match,
    exact_match,
    extract_label,
    label_match,
    parse_judge_output,
    token_f1,
)


def test_exact_match_normalises() -> None:
    assert exact_match("q", "The Eiffel Tower.", "eiffel tower") == 1.0
    assert exact_match("q", "Louvre", "eiffel tower") == 0.0


def test_token_f1_partial_credit() -> None:
    assert token_f1("q", "the cat sat", "a cat sat down") == pytest.approx(0.8)
    assert token_f1("q", "dog", "cat") == 0.0


def test_scorers_need_a_reference() -> None:
    with pytest.raises(ValueError, match="needs a reference"):
        exact_match("q", "x", None)


@pytest.mark.parametrize(
    ("text", "labels", "want"),
    [
        ("Let me think. Answer: no", ["yes", "no", "maybe"], "no"),
        ("Answer: (C) it would", ["A", "B", "C", "D"], "C"),
        ("Maybe, the data are unclear", ["yes", "no", "maybe"], "maybe"),
        ("A is wrong. B is wrong. The answer is D", ["A", "B", "C", "D"], "D"),
        ("no idea", ["A", "B", "C", "D"], None),
        ("", ["yes", "no"], None),
        ("yesterday nothing", ["yes", "no"], None),
    ],
)
def test_extract_label(text: str, labels: list[str], want: str | None) -> None:
    assert extract_label(text, labels) == want


def test_label_and_choice_match() -> None:
    assert label_match(["yes", "no"])("q", "Yes.", "yes") == 1.0
    assert choice_match("q", "Answer: B", "C") == 0.0
    with pytest.raises(ValueError, match="names none of the labels"):
        choice_match("q", "no idea", "A")


@pytest.mark.parametrize(
    ("reply", "score", "rationale"),
    [
        ('{"score": 7, "rationale": "mostly right"}', 0.7, "mostly right"),
        ('Here you go:\n```json\n{"score": 10, "rationale": "exact"}\n```', 1.0, "exact"),
        ("Score: 3\nweak reasoning", 0.3, "Score: 3\nweak reasoning"),
    ],
)
def test_parse_judge_output(reply: str, score: float, rationale: str) -> None:
    assert parse_judge_output(reply) == (pytest.approx(score), rationale)


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("I can't grade this answer.", "refused"),
        ("The answer looks fine to me.", "no score"),
        ('{"score": 14, "rationale": "x"}', "outside 0..10"),
        ('{"score": -1}', "outside 0..10"),
        ('{"score": "high"}', "not a number"),
    ],
)
def test_bad_judge_output_is_a_parse_error(reply: str, reason: str) -> None:
    with pytest.raises(JudgeParseError, match=reason):
        parse_judge_output(reply)


def test_extract_label_refuses_an_answer_that_commits_to_two_labels() -> None:
    labels = ("acceptable", "unacceptable")
    echoed = 'I\'ll reply with only "Answer: acceptable" or "Answer: unacceptable".'
    assert extract_label(echoed, labels) is None, "an echoed instruction is not an answer"
    assert extract_label("Answer: unacceptable. So, final answer: unacceptable", labels) == "unacceptable"
    assert extract_label("It seems acceptable at first. Answer: unacceptable", labels) == "unacceptable"
    assert extract_label("The answer is - acceptable", labels) == "acceptable"


LETTERS = ["A", "B", "C", "D"]


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("I have no idea, it is a guess.", None),  # the article "a" is not choice A
        ("End with 'Answer: A', 'B', 'C' or 'D'.", None),  # an echoed instruction is no answer
        ("Answer: a guess would be fine", None),
        ("Options: (A) rain (B) sun", None),  # two labels in parentheses commit to nothing
        ("B) because the road is wet", "B"),
        ("The correct option is (D).", "D"),
        ("End with 'Answer: A', 'B', 'C' or 'D'.\nAnswer: C", "C"),
        ("C", "C"),
        ("I would pick option B, since a dog barks.", "B"),  # a letter named as a choice
        ("choice (b) fits best", "B"),
        ("I'd go with B", "B"),
        ("I would go with a friend.", None),  # after a verb only a capital is a choice
        ("Pick option A, B, C or D.", None),  # an echoed list of options names none
    ],
)
def test_single_letter_labels_need_a_marker_parentheses_or_a_line_of_their_own(
    text: str, want: str | None
) -> None:
    assert extract_label(text, LETTERS) == want


def test_word_labels_are_not_read_out_of_phrases() -> None:
    labels = ["yes", "no", "maybe"]
    assert extract_label("I have no idea, it is a guess.", labels) is None  # "no idea" is not "no"
    assert extract_label("Answer yes or no.", labels) is None
    assert extract_label("No, the trial found nothing.", labels) == "no"
    assert extract_label("Answer with yes, no or maybe.\nAnswer: maybe", labels) == "maybe"


_FILLER = ["a", "an", "the", "idea", "guess", "is", "it", "I", "have", "data", "not", "no", "yes", "so"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_FILLER), min_size=1, max_size=12))
def test_generated_text_without_an_answer_commits_to_no_label(words: list[str]) -> None:
    """Generated replies: lowercase words never name a letter; a word label counts only where the
    reply opens or closes with it."""
    text = " ".join(words) + "."
    assert extract_label(text, LETTERS) is None
    got = extract_label(text, ["yes", "no", "maybe"])
    edge = {w for w in (words[0], words[-1]) if w in ("yes", "no")}
    assert got is None if not edge else got in edge
    assert extract_label(text, ["acceptable", "unacceptable"]) is None
