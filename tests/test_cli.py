"""The cowest-graph command line."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cowest_graph.cli import app
from cowest_graph.store import open_trace_store

runner = CliRunner()


def _store_with_runs(path: Path) -> str:
    url = f"sqlite:///{path}"
    store = open_trace_store(url)
    for i in range(3):
        store.write_run(
            {
                "run_id": f"run{i}",
                "started_at": 100.0 + i,
                "status": "success",
                "question": f"q{i}",
                "best_score": i / 2,
                "thread_id": "t",
            }
        )
    store.close()
    return url


def test_traces_list_show_export(tmp_path: Path) -> None:
    url = _store_with_runs(tmp_path / "t.db")
    listed = runner.invoke(app, ["traces", "list", "--store", url, "--min-score", "0.5"])
    assert listed.exit_code == 0 and "run1" in listed.output and "run0" not in listed.output
    shown = runner.invoke(app, ["traces", "show", "run2", "--store", url])
    assert shown.exit_code == 0 and json.loads(shown.output)["question"] == "q2"
    out = tmp_path / "out.jsonl"
    exported = runner.invoke(app, ["traces", "export", str(out), "--store", url])
    assert exported.exit_code == 0 and len(out.read_text().splitlines()) == 3
    ds_dir = tmp_path / "ds"
    assert runner.invoke(app, ["traces", "export", str(ds_dir), "--store", url]).exit_code == 0
    import datasets

    assert datasets.load_from_disk(str(ds_dir)).num_rows == 3


def test_traces_errors_are_one_line(tmp_path: Path) -> None:
    from cowest_graph.store import StoreError

    # A store error reaches `main` (one line, exit status 6: tests/test_cli_errors.py).
    bad = runner.invoke(app, ["traces", "list", "--store", "mysql://x"])
    assert isinstance(bad.exception, StoreError) and "unknown trace store scheme 'mysql'" in str(
        bad.exception
    )
    url = _store_with_runs(tmp_path / "t.db")
    missing = runner.invoke(app, ["traces", "show", "nope", "--store", url])
    assert missing.exit_code == 2 and "no run 'nope'" in missing.output
