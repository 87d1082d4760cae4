# ruff: noqa: E501 - whole questions read best
"""The large Quillfeather domain: disjoint template splits, computed references, committed files current."""

from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

DOMAIN = Path(__file__).resolve().parent.parent / "examples" / "data" / "quillfeather"
sys.path.insert(0, str(DOMAIN))

import templates as tpl  # noqa: E402


def _rows(split: str) -> list[dict[str, str]]:
    return [json.loads(line) for line in (DOMAIN / "large" / f"{split}.jsonl").read_text().splitlines()]


def test_the_committed_files_are_what_the_generator_writes() -> None:
    generated = tpl.generate()
    for split in tpl.SPLITS:
        assert _rows(split) == generated[split], f"large/{split}.jsonl is stale: rerun make_data.py"


def test_every_row_names_rule_template_split_and_no_template_or_question_crosses_splits() -> None:
    seen_template: dict[str, str] = {}
    questions: dict[str, str] = {}
    for split in tpl.SPLITS:
        rows = _rows(split)
        per_rule = Counter(r["rule"] for r in rows)
        assert len(per_rule) == 24 and set(per_rule.values()) == {tpl.PER_RULE[split]}
        for r in rows:
            assert r["split"] == split and r["template"].startswith(r["rule"] + "-")
            assert seen_template.setdefault(r["template"], split) == split
            assert questions.setdefault(r["question"], split) == split
    assert len(_rows("test")) >= 240
    sft = {json.loads(line)["question"] for line in (DOMAIN / "sft.jsonl").read_text().splitlines()}
    assert not sft & {r["question"] for r in _rows("test") + _rows("validation")}


def test_a_template_in_two_splits_is_refused() -> None:
    first = tpl.TEMPLATES[0]  # a collect template
    with pytest.raises(ValueError, match="appears in two splits"):  # the same name
        tpl.check_templates([*tpl.TEMPLATES, replace(first, split="test")])
    with pytest.raises(ValueError, match="appears in two splits"):  # the same text under another name
        tpl.check_templates([*tpl.TEMPLATES, replace(first, split="test", name="expense-t9")])
    team_test = [t for t in tpl.TEMPLATES if t.rule == "team" and t.split == "test"]
    with pytest.raises(ValueError, match="rule 'team' has 6 distinct test questions, needs 10"):
        tpl.check_templates([t for t in tpl.TEMPLATES if t not in team_test[1:]])


@pytest.mark.parametrize(
    ("question", "reference"),
    [
        ("It is Sunday. In how many days is the next Quillfeather expense report deadline?", "4"),
        (
            "A Quillfeather meeting must be over by 16:00 and runs as long as allowed. At what time does it start?",
            "15:15",
        ),
        ("A Quillfeather employee's probation ended in November. In which month did they join?", "May"),
        ("It is November. In which month is the next Quillfeather fire drill?", "January"),
        (
            "A Quillfeather project has 29 people. What is the smallest number of teams they can be split into?",
            "5",
        ),
        ("A Quillfeather visitor badge expired at 17:30. At what time was it issued?", "09:30"),
    ],
)
def test_references_follow_the_rule(question: str, reference: str) -> None:
    for t in tpl.TEMPLATES:
        for values in t.combos():
            text, ref = t.render(values)
            if text == question:
                assert ref == reference
                return
    pytest.fail(f"no template renders {question!r}")


def test_each_rule_fact_states_its_own_rule_and_no_other() -> None:
    import make_data

    for key, fact, *_ in make_data.RULES:
        assert tpl.states_rule(fact, key), key
        assert [k for k, *_ in make_data.RULES if k != key and tpl.states_rule(fact, k)] == [], key
