"""Injected faults on a real SQLite file: another process holding the write lock, a read-only
directory, a full disk (RLIMIT_FSIZE). Each gives a wait or one clear error, and nothing already
recorded is lost."""

from __future__ import annotations

import os
import resource
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cowest_graph.store import StoreError, open_trace_store


def _record(i: int, text: str = "") -> dict:
    return {"run_id": f"r{i}", "started_at": 1000.0 + i, "status": "success", "question": f"Q{i}?{text}"}


def test_a_writer_waits_for_another_process_holding_the_write_lock(tmp_path: Path) -> None:
    db = tmp_path / "traces.db"
    store = open_trace_store(f"sqlite:///{db}")
    store.write_run(_record(0))
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys, time\n"
            f"c = sqlite3.connect({str(db)!r}, isolation_level=None)\n"
            "c.execute('BEGIN IMMEDIATE')\n"
            "print('locked', flush=True)\n"
            "time.sleep(2.0)\n"
            "c.execute('COMMIT')\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        start = time.perf_counter()
        store.write_run(_record(1))  # waits for the lock instead of failing
        waited = time.perf_counter() - start
    finally:
        holder.wait(timeout=30)
    assert waited > 1.0
    assert {r.run_id for r in store.list_runs()} == {"r0", "r1"}
    store.close()


def test_a_store_in_a_read_only_directory_is_one_clear_error(tmp_path: Path) -> None:
    """A directory without write permission (as root, which ignores permissions: /sys, where no
    file can be created)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    store = open_trace_store(f"sqlite:///{folder / 'traces.db'}")
    store.write_run(_record(0))
    store.close()
    before = (folder / "traces.db").read_bytes()
    folder.chmod(0o500)
    target = Path("/sys") if os.geteuid() == 0 else folder
    try:
        with pytest.raises(StoreError) as err:
            open_trace_store(f"sqlite:///{target / 'new.db'}")
    finally:
        folder.chmod(0o700)
    message = str(err.value)
    assert str(target / "new.db") in message and "\n" not in message
    assert "denied" in message or "read-only" in message
    assert (folder / "traces.db").read_bytes() == before


def test_a_full_disk_is_one_clear_error_and_the_recorded_runs_stay(tmp_path: Path) -> None:
    """The writer runs in a child process whose file-size limit stands in for a full disk."""
    db = tmp_path / "traces.db"
    store = open_trace_store(f"sqlite:///{db}")
    for i in range(5):
        store.write_run(_record(i))
    store.close()
    limit = db.stat().st_size + 64 * 1024
    child = (
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))\n"
        "from cowest_graph.store import StoreError, open_trace_store\n"
        f"store = open_trace_store('sqlite:///{db}')\n"
        "try:\n"
        "    for i in range(100, 400):\n"
        "        store.write_run({'run_id': f'r{i}', 'started_at': 2000.0 + i, 'status': 'success',"
        " 'question': 'x' * 20000})\n"
        "except StoreError as exc:\n"
        "    print('STORE ERROR:', exc)\n"
        "    sys.exit(3)\n"
    )
    proc = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    message = proc.stdout.strip().splitlines()[-1]
    assert "full" in message.lower() and "Traceback" not in proc.stderr
    store = open_trace_store(f"sqlite:///{db}", create=False)
    runs = {r.run_id for r in store.list_runs(limit=None)}
    assert {f"r{i}" for i in range(5)} <= runs  # nothing already recorded is lost
    assert sqlite3.connect(db).execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    store.close()
    assert resource.getrlimit(resource.RLIMIT_FSIZE)[0] == resource.RLIM_INFINITY  # only the child


def test_exporting_a_store_streams_rows_into_a_dataset(tmp_path: Path) -> None:
    store = open_trace_store(f"sqlite:///{tmp_path / 'traces.db'}")
    for i in range(250):
        store.write_run(
            {**_record(i), "candidates": [{"id": "d0", "draft": "x", "answer": "y", "score": 0.5}]}
        )
    ds = store.to_dataset()
    assert ds.num_rows == 250 and ds[0]["run_id"] == "r0" and ds[249]["candidates"][0]["score"] == 0.5
    store.close()


def _pg_ctl(*args: str) -> None:
    """Run pg_ctl on the test server that scripts/postgres.sh started (as the postgres user)."""
    import glob
    import shutil

    data = Path(os.environ.get("COWEST_PG_DIR", "/tmp/cowest-pg")) / "data"
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not (data / "postmaster.pid").exists() or not bins:
        if os.environ.get("CI"):
            pytest.fail(
                "CI must restart the test PostgreSQL server, but scripts/postgres.sh did not start it here"
            )
        pytest.skip("the test PostgreSQL server was not started by scripts/postgres.sh")
    run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 and shutil.which("runuser") else []
    # The restarted server keeps whatever output it is given open: a log file, never a pipe.
    log = data.parent / "log"
    subprocess.run(
        [*run_as, bins[-1], "-D", str(data), "-l", str(log), "-w", *args],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=60,
    )


def test_a_postgresql_restart_mid_collection_loses_and_duplicates_no_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """8 traced runs; the server restarts after the 4th. The write that meets the dead connection
    fails, the tracer keeps that run, and the next write reconnects and writes both: every run is
    recorded once, complete."""
    import uuid

    import psycopg
    from conftest import postgres_url_or_skip

    from cowest_graph import CowestTracer, create_cowest_graph
    from cowest_graph.testing import ScriptedChatModel

    base = postgres_url_or_skip()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    url = base + ("&" if "?" in base else "?") + f"options=-csearch_path%3D{schema}"
    weak = ScriptedChatModel(respond=lambda m: "a draft")
    strong = ScriptedChatModel(respond=lambda m: "an answer")
    graph = create_cowest_graph(weak, strong, scorer=lambda q, a, r: 0.5, num_drafts=2).compile()
    tracer = CowestTracer(url)
    try:
        for i in range(8):
            if i == 4:
                _pg_ctl("-m", "fast", "restart")
            graph.invoke({"question": f"Question {i}?"}, config={"callbacks": [tracer]})
        tracer.flush()
        assert any("not written yet" in r.getMessage() for r in caplog.records)  # the restart was hit
        runs = list(tracer.store.iter_runs())
        assert sorted(r["question"] for r in runs) == [f"Question {i}?" for i in range(8)]
        assert all(r["status"] == "success" and len(r["candidates"]) == 2 for r in runs)
        assert len({r["run_id"] for r in runs}) == 8
    finally:
        tracer.store.close()
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
