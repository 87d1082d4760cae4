"""Question files, evaluation metrics, and the trace store's schema migration."""

from __future__ import annotations

import importlib.util
import json
import sqlite3
from pathlib import Path

import pytest

from cowest_graph.critique import answer_match
from cowest_graph.data import load_questions
from cowest_graph.evaluate import bootstrap_ci, busy_time, keyword_judge, label_judge, macro_f1
from cowest_graph.loop import EXAMPLE_DATA
from cowest_graph.store import MIGRATIONS, SCHEMA_VERSION, open_trace_store


def test_load_jsonl_and_csv(tmp_path: Path) -> None:
    j = tmp_path / "q.jsonl"
    j.write_text('{"id": "a", "question": "Q1?", "reference": "R1"}\n\n{"input": "Q2?", "label": 1}\n')
    got = load_questions(j)
    assert [(e.id, e.question, e.reference) for e in got][0] == ("a", "Q1?", "R1")
    assert got[1].question == "Q2?" and got[1].reference == "1" and len(got[1].id) == 12
    c = tmp_path / "q.csv"
    c.write_text("label,input\n1,I stole a pen.\n0,I helped a friend.\n")
    assert [e.reference for e in load_questions(c)] == ["1", "0"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"question": "ok"}\n{broken\n', "q.jsonl:2: not valid JSON"),
        ('{"reference": "x"}\n', "q.jsonl:1: no question"),
        ('{"id": 1, "question": "a"}\n{"id": 1, "question": "b"}\n', "duplicate id '1'"),
        ("", "no questions"),
    ],
)
def test_bad_question_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        load_questions(path)


def test_demo_data_is_consistent(tmp_path: Path) -> None:
    train = load_questions(EXAMPLE_DATA / "train_questions.jsonl")
    test = load_questions(EXAMPLE_DATA / "test_questions.jsonl")
    sft = [json.loads(line) for line in (EXAMPLE_DATA / "sft.jsonl").read_text().splitlines()]
    assert (len(train), len(test), len(sft)) == (24, 48, 72)
    sft_questions = {r["question"] for r in sft}
    assert not {e.question for e in test} & ({e.question for e in train} | sft_questions), "test is held out"
    assert not {e.question for e in train} & sft_questions, "collection questions are new to the SFT model"
    # SFT teaches rules, never computed answers: every SFT answer is one of the 24 rule sentences.
    rules = {r["answer"] for r in sft}
    assert len(rules) == 24
    # Each held-out question's rule is taught, and its reference is a well-formed final answer.
    taught = {e.meta["rule"] for e in train}
    assert {e.meta["rule"] for e in test} == taught and len(taught) == 24
    assert all(answer_match(e.question, f"Working: ...\nAnswer: {e.reference}", e.reference) for e in test)
    # The files are what the generator writes.
    spec = importlib.util.spec_from_file_location("make_data", EXAMPLE_DATA / "make_data.py")
    assert spec and spec.loader
    make_data = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_data)
    make_data.main(tmp_path)
    for name in ("sft.jsonl", "train_questions.jsonl", "test_questions.jsonl"):
        assert (tmp_path / name).read_text() == (EXAMPLE_DATA / name).read_text(), name


def test_metrics() -> None:
    low, high = bootstrap_ci([1] * 30 + [0] * 10)
    assert low < 0.75 < high and high - low < 0.35
    assert macro_f1(["a", "b", "a"], ["a", "b", "b"], ["a", "b"]) == pytest.approx((2 / 3 + 2 / 3) / 2)
    assert keyword_judge("due on Thursday.", "Thursday") == (True, True)
    assert keyword_judge("  ", "Thursday") == (False, False)
    judge = label_judge(["yes", "no", "maybe"])
    assert judge("Answer: maybe", "maybe") == (True, True) and judge("unsure", "no") == (False, False)


def test_a_version_1_store_is_migrated_and_keeps_its_runs(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE cowest_schema (version INTEGER NOT NULL)")
    for statement in MIGRATIONS[1]:
        conn.execute(statement.format(real="REAL"))
    conn.execute("INSERT INTO cowest_schema VALUES (1)")
    conn.execute(
        "INSERT INTO cowest_runs (run_id, started_at, status, data) VALUES ('old', 1.0, 'success', ?)",
        (json.dumps({"run_id": "old", "question": "from v1"}),),
    )
    conn.commit()
    conn.close()
    store = open_trace_store(f"sqlite:///{db}")
    assert store.schema_version() == SCHEMA_VERSION == 3
    assert store.get_run("old")["question"] == "from v1"
    store.write_run({"run_id": "new", "started_at": 2.0, "status": "success", "example_id": "ex1"})
    assert store.example_ids() == {"ex1"}


def test_a_cut_graph_condition_goes_on_from_the_questions_it_traced(tmp_path: Path, weak) -> None:
    """`evaluate_graph(..., resume=True)` reads the answers of questions already traced in the
    condition's store and asks only the rest; cost counts every run, wall time leaves gaps out.
    Real weak model (SmolLM2), scripted strong model."""
    import asyncio

    from cowest_graph import create_cowest_graph
    from cowest_graph.critique import label_match
    from cowest_graph.data import Example
    from cowest_graph.evaluate import evaluate_graph
    from cowest_graph.testing import ScriptedChatModel
    from cowest_graph.tracing import CowestTracer

    examples = [Example(f"q{i}", f"Is {i} even? Answer yes or no.", ("yes", "no")[i % 2]) for i in range(4)]
    strong = ScriptedChatModel(respond=lambda m: "Answer: yes")
    graph = create_cowest_graph(weak, strong, scorer=label_match(("yes", "no"))).compile()
    tracer = CowestTracer(f"sqlite:///{tmp_path / 'cowest.db'}")

    def run(rows: list[Example], **kw: object):
        return asyncio.run(evaluate_graph("CoWest", graph, rows, labels=("yes", "no"), concurrency=1, **kw))

    cut = run(examples[:2], tracer=tracer)  # as if killed after the first two questions
    assert len(strong.calls) == 2
    first_drafts = list(cut.drafts)

    whole = run(examples, tracer=CowestTracer(f"sqlite:///{tmp_path / 'cowest.db'}"), resume=True)
    assert len(strong.calls) == 4, "only the two questions without a trace were asked"
    assert whole.n == 4 and whole.correct == [1, 0, 1, 0]  # the strong model always says yes
    assert whole.drafts[:2] == first_drafts, "kept questions keep the draft the strong model read"
    assert whole.strong_calls_per_q == 1.0  # all four runs are counted, the earlier ones too
    runs = list(tracer.store.iter_runs())
    spans = [(r["started_at"], r["ended_at"]) for r in runs]
    assert whole.wall_s == pytest.approx(busy_time(spans))
    assert whole.wall_s <= max(e for _, e in spans) - min(s for s, _ in spans)

    again = run(examples, tracer=CowestTracer(f"sqlite:///{tmp_path / 'cowest.db'}"), resume=True)
    assert len(strong.calls) == 4 and again.correct == whole.correct, "nothing left to ask"
    run(examples, tracer=tracer)  # without resume every question is asked again
    assert len(strong.calls) == 8
    with pytest.raises(ValueError, match="resume=True needs a tracer"):
        run(examples, resume=True)
