"""Rationales written by the strong model for train-side rows: resumable, nothing lost, bad files named."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from langchain_core.messages import BaseMessage

from benchmarks.rationales import awrite_rationales, read_rationales
from cowest_graph.data import Example
from cowest_graph.testing import ScriptedChatModel


def _rows(n: int) -> list[Example]:
    return [
        Example(f"r{i}", f"Scenario: act {i}.", "acceptable" if i % 2 else "unacceptable") for i in range(n)
    ]


def test_rationales_are_written_once_given_the_label_and_a_cut_run_resumes(tmp_path: Path) -> None:
    path = tmp_path / "ethics.jsonl"

    def reply(messages: list[BaseMessage]) -> str:
        user = str(messages[-1].content)
        if "act 2." in user:
            return "Answer: acceptable"  # no reasoning at all: not kept, asked again next run
        label = user.split("judges this ")[1].split(".")[0]
        return f"Because of {user.split()[2]} it is {label}.\nAnswer: {label}"

    model = ScriptedChatModel(respond=reply)
    got = asyncio.run(awrite_rationales(_rows(2), model, path, progress=False))
    assert got == {"r0": "Because of 0. it is unacceptable.", "r1": "Because of 1. it is acceptable."}
    assert "A typical person judges this unacceptable." in str(model.calls[0][-1].content)
    before = path.read_text()

    more = asyncio.run(awrite_rationales(_rows(4), model, path, progress=False))
    assert len(model.calls) == 4, "rows already written are not asked again"
    assert path.read_text().startswith(before), "nothing already written is lost"
    assert set(more) == {"r0", "r1", "r3"} and read_rationales(path) == more
    record = json.loads(path.read_text().splitlines()[-1])
    assert record["model"] == "scripted-strong" and record["reference"] == "acceptable"

    asyncio.run(awrite_rationales(_rows(4), model, path, progress=False))
    assert len(model.calls) == 5, "only the row without a rationale is asked again"


def test_a_damaged_rationale_file_is_named_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "ethics.jsonl"
    path.write_text('{"id": "r0", "rationale": "ok"}\n{"id": "r1"}\n')
    with pytest.raises(ValueError, match=r"ethics.jsonl:2: not a rationale record"):
        read_rationales(path)
