"""Generated inputs (Hypothesis) at the data path's edges: scorers, the judge parser, the trace
store round trip (unicode, long text, NaN and inf), question files, and CLI option ranges."""

from __future__ import annotations

import json
import math
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cowest_graph.critique import (
    JudgeParseError,
    answer_match,
    contains_match,
    exact_match,
    label_match,
    parse_judge_output,
    token_f1,
)
from cowest_graph.data import load_questions
from cowest_graph.store import open_trace_store

TEXT = st.text(max_size=200)
SCORERS = [exact_match, contains_match, token_f1, answer_match, label_match(["yes", "no", "maybe"])]


@given(st.sampled_from(SCORERS), TEXT, TEXT, TEXT)
def test_every_scorer_returns_a_value_in_0_1_or_names_a_bad_reference(
    scorer, question, answer, reference
) -> None:  # noqa: ANN001
    try:
        score = scorer(question, answer, reference)
    except ValueError as exc:  # an empty reference, or one that is not a label: one clear line
        assert "reference" in str(exc) or "label" in str(exc)
        return
    assert isinstance(score, float) and 0.0 <= score <= 1.0


@given(st.sampled_from(SCORERS), TEXT, TEXT, st.sampled_from(["yes", "no", "maybe"]))
def test_with_a_valid_reference_every_scorer_scores_any_answer(scorer, question, answer, reference) -> None:  # noqa: ANN001
    try:
        score = scorer(question, answer, reference)
    except ValueError as exc:  # only the label scorer may refuse: an answer naming no label
        assert scorer is SCORERS[-1] and "label" in str(exc)
        return
    assert 0.0 <= score <= 1.0


@given(st.one_of(TEXT, st.builds(lambda s: json.dumps({"score": s}), st.floats() | st.integers() | TEXT)))
def test_the_judge_parser_returns_a_score_in_range_or_its_own_error(reply: str) -> None:
    try:
        score, rationale = parse_judge_output(reply)
    except JudgeParseError:
        return
    assert 0.0 <= score <= 1.0 and isinstance(rationale, str)


# -- the trace store -------------------------------------------------------------------------
SCORE = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True), st.integers(0, 1))
LONG = st.builds(lambda s: (s + "é😀\x00 ") * (20_000 // (len(s) + 4) + 1), TEXT)  # >= 20k characters
RECORD = st.fixed_dictionaries(
    {
        "started_at": st.floats(0, 2e9),
        "status": st.sampled_from(["success", "error", "interrupted"]),
        "question": st.one_of(TEXT, LONG),
        "answer": st.one_of(st.none(), TEXT),
        "best_score": SCORE,
        "candidates": st.lists(
            st.fixed_dictionaries({"id": st.text(min_size=1, max_size=8), "draft": TEXT, "score": SCORE}),
            max_size=4,
        ),
        "nodes": st.lists(
            st.fixed_dictionaries(
                {
                    "node": st.sampled_from(["prepare", "weak_draft", "strong_refine", "critique"]),
                    "round": st.integers(0, 5),
                    "started_at": st.floats(0, 2e9),
                    "latency_s": SCORE,
                    "error": st.one_of(st.none(), TEXT),
                    "calls": st.just([]),
                }
            ),
            max_size=3,
        ),
        "meta": st.dictionaries(
            st.text(max_size=10), st.one_of(TEXT, st.integers(), st.booleans()), max_size=3
        ),
    }
)


def _expected(value, path: str, nonfinite: dict[str, str]):  # noqa: ANN001, ANN202
    if isinstance(value, float) and not math.isfinite(value):
        nonfinite[path] = repr(value)
        return None
    if isinstance(value, dict):
        return {k: _expected(v, f"{path}.{k}" if path else k, nonfinite) for k, v in value.items()}
    if isinstance(value, list):
        return [_expected(v, f"{path}[{i}]", nonfinite) for i, v in enumerate(value)]
    return value


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(record=RECORD)
def test_a_store_round_trip_keeps_every_record_and_marks_nonfinite_scores(
    store_url: str, record: dict
) -> None:
    """Write then read is the identity, except that NaN/inf become null and the record says where
    (`nonfinite`), on SQLite and on PostgreSQL (NUL characters and 20k-character texts included)."""
    store = open_trace_store(store_url)
    try:
        record = {"run_id": uuid.uuid4().hex, **record}
        store.write_run(record)
        nonfinite: dict[str, str] = {}
        want = _expected(record, "", nonfinite)
        if nonfinite:
            want["nonfinite"] = nonfinite
        assert store.get_run(record["run_id"]) == want
        summary = next(s for s in store.list_runs(limit=None) if s.run_id == record["run_id"])
        best = record["best_score"]
        assert summary.best_score == (best if best is None or math.isfinite(best) else None)
    finally:
        store.close()


# -- question files --------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_question_files_with_a_bom_crlf_and_a_100k_question_load(tmp_path: Path, suffix: str) -> None:
    long_q = "why " * 25_000
    rows = [("q1", "What is two plus two?", "4"), ("q2", long_q.strip(), "because")]
    if suffix == ".csv":
        text = "id,question,reference\r\n" + "".join(f'{i},"{q}",{r}\r\n' for i, q, r in rows)
    else:
        text = "".join(json.dumps({"id": i, "question": q, "reference": r}) + "\r\n" for i, q, r in rows)
    path = tmp_path / f"questions{suffix}"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    examples = load_questions(path)
    assert [(e.id, e.question, e.reference) for e in examples] == [(i, q.strip(), r) for i, q, r in rows]
    assert len(examples[1].question) > 99_000


# -- numeric CLI options out of range ------------------------------------------------------
@pytest.mark.parametrize(
    "argv",
    [
        ["ask", "Q?", "-k", "0"],
        ["ask", "Q?", "--max-new-tokens", "0"],
        ["run", "questions.jsonl", "-k", "0"],
        ["run", "questions.jsonl", "--concurrency", "0"],
        ["serve-strong", "--port", "70000"],
        ["serve-strong", "--n-ctx", "10"],
        ["pairs", "traces.db", "--eval-fraction", "1.5"],
        ["pairs", "traces.db", "--min-margin", "-1"],
    ],
)
def test_a_numeric_option_out_of_range_is_a_short_usage_error(argv: list[str]) -> None:
    from typer.testing import CliRunner

    from cowest_graph.cli import app

    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    option = next(a for a in argv if a.startswith("-"))
    assert option in result.output and ("range" in result.output or "Invalid value" in result.output)
    assert len(result.output.strip().splitlines()) <= 8
