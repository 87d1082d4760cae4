"""The alignment benchmark on the pipeline: real SmolLM2 SFT, drafts, DPO+NLL and rejection-sampling
SFT; a scripted strong model that gets the answer right from some drafts and never alone."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from benchmarks import alignment
from cowest_graph.collect import CollectionRecipe
from cowest_graph.data import load_questions
from cowest_graph.testing import ScriptedChatModel

pytestmark = pytest.mark.slow

REFERENCES = {
    e.question: e.reference
    for split in ("collect", "validation", "test")
    for e in load_questions(alignment.LARGE / f"{split}.jsonl")
}


def _respond(messages) -> str:
    """Right when the fenced draft has an even number of characters, never without a draft."""
    text = messages[-1].content
    question = next(q for q in REFERENCES if q in text)
    if "<draft>" not in text:
        return "Working: no rule known.\nAnswer: none"
    draft = text.split("<draft>", 1)[1].split("</draft>", 1)[0].strip()
    return f"Answer: {REFERENCES[question]}" if len(draft) % 2 == 0 else "Answer: none"


def _run(config: alignment.AlignmentConfig) -> tuple[dict, ScriptedChatModel]:
    strong = ScriptedChatModel(respond=_respond)
    return asyncio.run(alignment.AlignmentRun(config, strong).run()), strong


def test_a_run_writes_its_rows_and_a_rerun_or_a_fresh_machine_pays_for_nothing_again(tmp_path: Path) -> None:
    results = tmp_path / "results"
    config = alignment.AlignmentConfig(
        strong="scripted",
        recipes=("rpo", "rft"),
        collection=CollectionRecipe(num_drafts=4),
        limit=3,
        max_steps=1,
        work=tmp_path / "work",
        results=results,
    )
    scripted = ScriptedChatModel(respond=_respond)
    payload = asyncio.run(alignment.AlignmentRun(config, scripted).run())
    assert scripted.calls, "the first run asks the strong model"

    saved = json.loads((results / "alignment.json").read_text())
    assert saved["rows"] == payload["rows"] and saved["commit"]
    got = {(r["condition"], r["split"]) for r in saved["rows"]}
    assert got == {
        ("strong alone", "test"),
        ("CoWest (SFT weak)", "test"),
        ("weak alone (SFT)", "test"),
        ("CoWest (SFT weak)", "validation"),
        *{(f"CoWest aligned ({r})", s) for r in ("rpo", "rft") for s in ("validation", "test")},
    }
    for row in saved["rows"]:
        assert row["n"] == 3 and len(row["outcomes"]) == 3 and row["commit"]
        assert 0 <= row["ci_low"] <= row["accuracy"] <= row["ci_high"] <= 1
    strong_alone = next(r for r in saved["rows"] if r["condition"] == "strong alone")
    assert strong_alone["accuracy"] == 0.0  # the scripted strong model never knows the rule alone
    family = [p for p in saved["paired"] if p["against"] == "CoWest (SFT weak)"]
    assert {p["recipe"] for p in family} == {"rpo", "rft"}
    assert all(p["p"] <= p["p_holm"] <= 1 for p in family)
    assert saved["chosen_on_validation"] in ("rpo", "rft")
    pairs_file = results / "pairs" / "alignment-smollm2-135m.jsonl"
    lines = pairs_file.read_text().splitlines()
    assert len(lines) == saved["pairs"]["pairs"] > 0 and saved["pairs"]["rules"] == 1
    assert all(json.loads(line)["margin"] > 0 for line in lines)

    # The results again from the step log alone: the same rows, and the reading of the drafts.
    assert alignment.report_from_log(config)["rows"] == payload["rows"]
    assert all(
        r.get("drafts_state_rule") is None or 0 <= r["drafts_state_rule"] <= 1 for r in payload["rows"]
    )
    assert any(r.get("drafts_state_rule") is not None for r in payload["rows"])
    assert set(payload["pair_reading"]) >= {"chosen_states_rule", "rejected_states_rule", "pairs_per_rule"}

    # The same work folder: every step comes from the log, no strong call, no training.
    again = ScriptedChatModel(respond=_respond)
    assert asyncio.run(alignment.AlignmentRun(config, again).run())["rows"] == payload["rows"]
    assert again.calls == []

    # A fresh machine (another work folder, the kept steps and pairs only): SFT is trained again
    # and comes out the same, so the kept pairs and the kept rows are used and nothing is collected.
    fresh_config = alignment.AlignmentConfig(**{**config.__dict__, "work": tmp_path / "other-machine"})
    scripted = ScriptedChatModel(respond=_respond)
    assert asyncio.run(alignment.AlignmentRun(fresh_config, scripted).run())["rows"] == payload["rows"]
    assert scripted.calls == []
    assert not (tmp_path / "other-machine" / "smollm2-135m" / "traces-collect.db").exists()


def test_an_unknown_recipe_or_drafter_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown recipe"):
        alignment.AlignmentConfig(recipes=("dpo", "ppo"))
    with pytest.raises(ValueError, match="not available"):
        alignment.AlignmentConfig(drafter="llama-70b")
