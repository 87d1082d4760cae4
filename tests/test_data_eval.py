"""Question files, evaluation metrics, and the trace store's schema migration."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from cowest_graph.data import load_questions
from cowest_graph.evaluate import bootstrap_ci, keyword_judge, label_judge, macro_f1
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


def test_demo_data_is_consistent() -> None:
    train = load_questions(EXAMPLE_DATA / "train_questions.jsonl")
    test = load_questions(EXAMPLE_DATA / "test_questions.jsonl")
    sft = [json.loads(line) for line in (EXAMPLE_DATA / "sft.jsonl").read_text().splitlines()]
    assert len(train) == len(test) == 24 and len(sft) == 48
    assert not {e.question for e in train} & {e.question for e in test}, "test questions are held out"
    facts = " ".join(r["answer"] for r in sft).lower()
    assert all(e.reference.lower() in facts for e in test), "every test answer is taught by the SFT data"


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
    assert store.schema_version() == SCHEMA_VERSION == 2
    assert store.get_run("old")["question"] == "from v1"
    store.write_run({"run_id": "new", "started_at": 2.0, "status": "success", "example_id": "ex1"})
    assert store.example_ids() == {"ex1"}
