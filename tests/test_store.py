"""The trace store: the same behaviour on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cowest_graph.store import (
    SCHEMA_VERSION,
    CorruptRecordError,
    RunFilter,
    StoreError,
    open_trace_store,
)


def record(i: int, **extra) -> dict:
    return {
        "run_id": f"run{i}",
        "thread_id": f"t{i % 2}",
        "started_at": 1000.0 + i,
        "ended_at": 1000.5 + i,
        "status": "success",
        "question": f"question {i}",
        "weak_model": "weak-m",
        "strong_model": "strong-m",
        "adapter_version": "v0001" if i >= 3 else None,
        "best_score": i / 10,
        "candidates": [{"id": "r1d0", "round": 1, "draft": f"d{i}", "answer": f"a{i}", "score": i / 10}],
        "nodes": [
            {
                "node": "weak_draft",
                "round": 1,
                "started_at": 1000.0 + i,
                "latency_s": 0.1,
                "calls": [{"role": "weak", "outputs": [f"d{i}"]}],
            }
        ],
        **extra,
    }


def test_write_fetch_filter_export(store_url: str, tmp_path) -> None:
    store = open_trace_store(store_url)
    assert store.schema_version() == SCHEMA_VERSION
    for i in range(6):
        store.write_run(record(i))
    store.write_run(record(5, status="error"))  # same run id: replaced, not duplicated
    assert store.count() == 6
    assert store.get_run("run4")["candidates"][0]["answer"] == "a4"
    assert [r.run_id for r in store.list_runs(thread_id="t1")] == ["run1", "run3", "run5"]
    assert [r.run_id for r in store.list_runs(min_score=0.25, max_score=0.45)] == ["run3", "run4"]
    assert [r.run_id for r in store.list_runs(adapter_version="v0001", status="success")] == ["run3", "run4"]
    assert [r.run_id for r in store.list_runs(since=1004.0)] == ["run4", "run5"]
    assert store.count(RunFilter(model="strong-m")) == 6 and store.count(model="other") == 0
    assert [r.run_id for r in store.list_runs(limit=2, offset=1)] == ["run1", "run2"]
    assert [r["run_id"] for r in store.iter_runs(batch_size=4)] == [f"run{i}" for i in range(6)]

    path = tmp_path / "out.jsonl"
    assert store.export_jsonl(path, thread_id="t0") == 3
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [x["run_id"] for x in lines] == ["run0", "run2", "run4"]

    ds = store.to_dataset()
    assert ds.num_rows == 6 and ds[4]["candidates"][0]["score"] == pytest.approx(0.4)
    with pytest.raises(KeyError, match="no run"):
        store.get_run("nope")
    store.close()


def test_reopening_is_idempotent(store_url: str) -> None:
    open_trace_store(store_url).write_run(record(1))
    again = open_trace_store(store_url)
    assert again.schema_version() == SCHEMA_VERSION and again.count() == 1


def test_newer_schema_is_refused_and_nothing_is_lost(store_url: str) -> None:
    store = open_trace_store(store_url)
    store.write_run(record(1))
    with store._cursor_ctx(write=True) as cur:
        cur.execute("INSERT INTO cowest_schema (version) VALUES (99)")
    with pytest.raises(StoreError, match="schema version 99, newer") as err:
        open_trace_store(store_url)
    assert "\n" not in str(err.value)
    with store._cursor_ctx(write=True) as cur:
        cur.execute("DELETE FROM cowest_schema WHERE version = 99")
    assert open_trace_store(store_url).get_run("run1")["question"] == "question 1"


def test_corrupt_row_is_reported_and_the_rest_load(store_url: str) -> None:
    store = open_trace_store(store_url)
    for i in range(4):
        store.write_run(record(i))
    p = store._dialect.param
    with store._cursor_ctx(write=True) as cur:
        cur.execute(f"UPDATE cowest_runs SET data = {p} WHERE run_id = {p}", ('{"broken', "run2"))
    with pytest.warns(UserWarning, match="run run2"):
        loaded = [r["run_id"] for r in store.iter_runs(batch_size=2)]
    assert loaded == ["run0", "run1", "run3"]
    assert len(store.problems) == 1 and store.problems[0].startswith("run run2:")
    with pytest.raises(CorruptRecordError, match="run run2"):
        store.get_run("run2")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://u:secret@h/db", "unknown trace store scheme 'mysql'"),
        ("traces.txt", "has no scheme"),
        ("sqlite://relative.db", "three slashes"),
        ("sqlite:////no/such/dir/t.db", "does not exist"),
        ("postgresql://nobody:pw@127.0.0.1:1/nodb", "cannot connect to PostgreSQL"),
    ],
)
def test_bad_urls_give_one_clear_line(url: str, message: str) -> None:
    with pytest.raises(StoreError, match=message) as err:
        open_trace_store(url)
    text = str(err.value)
    assert "\n" not in text and "secret" not in text and ":pw@" not in text


def test_reading_never_creates_a_store(store_url: str) -> None:
    from cowest_graph.store import StoreError

    with pytest.raises(StoreError, match="no trace store"):
        open_trace_store(store_url, create=False)
    open_trace_store(store_url).close()  # writing creates it
    store = open_trace_store(store_url, create=False)
    assert store.list_runs() == []
    store.close()


_WRITER = """
import sys, time
from cowest_graph.store import open_trace_store
url, who, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
store = open_trace_store(url)
for i in range(n):
    store.write_run({
        "run_id": f"{who}-{i}", "started_at": time.time(), "status": "success",
        "question": f"question {i} from {who}", "best_score": 0.5,
        "nodes": [{"node": "strong_refine", "round": 1, "latency_s": 0.1, "started_at": 0.0,
                   "calls": [{"role": "strong", "messages": [{"role": "human", "content": "x" * 400}]}]}],
        "candidates": [{"id": "r1d0", "answer": "a" * 200, "score": 0.5}],
    })
store.close()
"""


def test_four_writer_processes_share_one_sqlite_file(tmp_path: Path) -> None:
    """The README's "safe for several processes": 4 processes write 50 runs each at once into one
    SQLite file; every run is there once, whole."""
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path}/shared.db"
    open_trace_store(url).close()  # created (and migrated) once, as a first writer would
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, url, f"w{k}", "50"], stderr=subprocess.PIPE, text=True
        )
        for k in range(4)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]
    store = open_trace_store(url)
    assert store.count() == 200
    ids = [r.run_id for r in store.list_runs(limit=1000)]
    assert len(ids) == len(set(ids)) == 200
    assert {i.split("-")[0] for i in ids} == {"w0", "w1", "w2", "w3"}
    assert store.get_run("w3-49")["question"] == "question 49 from w3"


def test_reading_pages_by_key_neither_repeats_nor_skips_while_others_write(store_url: str) -> None:
    """Runs written while a reader pages through the store (one that started earlier but finished
    later sorts before the reader's position) never make it read a run twice or miss one: pages
    follow (started_at, run_id), not OFFSET."""
    store = open_trace_store(store_url)
    for i in range(250):
        store.write_run({"run_id": f"r{i:03d}", "started_at": 1000.0 + i // 2, "status": "success"})
    seen = []
    for n, record in enumerate(store.iter_runs(batch_size=40)):
        seen.append(record["run_id"])
        if n % 40 == 39:  # between pages, another process finishes an early-started run
            store.write_run({"run_id": f"late{n}", "started_at": 500.0 + n, "status": "success"})
    assert len(seen) == len(set(seen)), "a run was read twice"
    assert [r for r in seen if r.startswith("r")] == [f"r{i:03d}" for i in range(250)], "a run was skipped"
    assert store.count() == 256
    # A filter and the key compose: only successful runs after the given start time, in order.
    tail = [r["run_id"] for r in store.iter_runs(batch_size=7, since=1100.0, status="success")]
    assert tail == [f"r{i:03d}" for i in range(200, 250)]
    store.close()


def test_the_column_spec_makes_the_table_the_row_and_the_export(store_url: str) -> None:
    # One spec (RUN_COLUMNS): the table a fresh store gets, the columns a written run fills, and
    # the features of an exported run all follow it.
    from cowest_graph.store import RUN_COLUMNS

    store = open_trace_store(store_url)
    store.write_run(record(7, example_id="ex-7"))
    names = [c.name for c in RUN_COLUMNS]
    with store._cursor_ctx(write=False) as cur:
        cur.execute(f"SELECT {', '.join(names)} FROM cowest_runs WHERE run_id = 'run7'")
        row = dict(zip(names, cur.fetchone(), strict=True))
        cur.execute("SELECT * FROM cowest_runs WHERE 1 = 0")
        table = [d[0] for d in cur.description]
    assert sorted(table) == sorted([*names, "data"])
    assert row["example_id"] == "ex-7" and row["best_score"] == pytest.approx(0.7)
    assert row["status"] == "success" and row["started_at"] == 1007.0
    ds = store.to_dataset()
    assert ds.column_names[: len(names)] == names and ds[0]["example_id"] == "ex-7"
    store.close()


def test_sqlite_seeks_each_page_instead_of_scanning_from_the_start(tmp_path: Path) -> None:
    # Keyset pages are linear only if the page query seeks the (started_at, run_id) index. The
    # OR-form of the key made SQLite scan the index from the first run on every page.
    store = open_trace_store(f"sqlite:///{tmp_path}/plan.db")
    for where, args in (("", []), (" WHERE status = ?", ["success"])):
        sql = store._page_query(where, after_key=True, limit=100)
        with store._cursor_ctx(write=False) as cur:
            cur.execute(f"EXPLAIN QUERY PLAN {sql}", [*args, 1000.0, "r1"])
            plan = " ".join(str(row[-1]) for row in cur.fetchall())
        assert "SEARCH cowest_runs USING INDEX cowest_runs_order" in plan, plan
    store.close()
