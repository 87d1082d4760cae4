"""`cowest-graph traces list|show|export`: inspect and export recorded traces."""

from __future__ import annotations

import typer
from rich.table import Table

from cowest_graph.cli.common import STORE_OPTION, _fail, _filters, _open_store, app, console

traces_app = typer.Typer(help="Inspect and export recorded traces.", no_args_is_help=True)
app.add_typer(traces_app, name="traces")


@traces_app.command("list")
def traces_list(
    store: str = STORE_OPTION,
    thread: str | None = typer.Option(None, help="Only this thread id."),
    adapter: str | None = typer.Option(None, help="Only runs drafted with this adapter version."),
    model: str | None = typer.Option(None, help="Only runs with this weak or strong model id."),
    min_score: float | None = typer.Option(None, help="Only runs whose best score is at least this."),
    status: str | None = typer.Option(None, help="success | error"),
    since_hours: float | None = typer.Option(None, help="Only runs from the last N hours."),
    limit: int = typer.Option(50, min=1, help="At most this many rows."),
) -> None:
    """List recorded runs."""
    import datetime as dt

    db = _open_store(store)
    runs = db.list_runs(limit=limit, **_filters(thread, adapter, model, min_score, status, since_hours))
    table = Table(title=f"{len(runs)} run(s) in {db.display_url}")
    for col in ("run id", "started", "status", "score", "adapter", "question"):
        table.add_column(col)
    for r in runs:
        when = dt.datetime.fromtimestamp(r.started_at).strftime("%Y-%m-%d %H:%M:%S")
        score = "-" if r.best_score is None else f"{r.best_score:.2f}"
        table.add_row(r.run_id, when, r.status, score, r.adapter_version or "-", (r.question or "")[:60])
    console.print(table)


@traces_app.command("show")
def traces_show(run_id: str, store: str = STORE_OPTION) -> None:
    """Print one run's whole trace as JSON."""
    import json

    from cowest_graph.store import CorruptRecordError

    db = _open_store(store)
    try:
        record = db.get_run(run_id)
    except (KeyError, CorruptRecordError) as exc:
        _fail(str(exc.args[0] if isinstance(exc, KeyError) else exc))
    typer.echo(json.dumps(record, indent=2, default=str))


@traces_app.command("export")
def traces_export(
    out: str = typer.Argument(..., help="Output file: .jsonl, or a directory for a datasets.Dataset."),
    store: str = STORE_OPTION,
    thread: str | None = typer.Option(None),
    adapter: str | None = typer.Option(None),
    model: str | None = typer.Option(None),
    min_score: float | None = typer.Option(None),
    status: str | None = typer.Option(None),
    since_hours: float | None = typer.Option(None),
) -> None:
    """Export runs to JSONL (or, for a path without .jsonl, a saved `datasets.Dataset`)."""
    import warnings

    db = _open_store(store)
    flt = _filters(thread, adapter, model, min_score, status, since_hours)
    with warnings.catch_warnings(), console.status(f"exporting runs from {db.display_url}..."):
        warnings.simplefilter("ignore")
        if out.endswith(".jsonl"):
            n = db.export_jsonl(out, **flt)
        else:
            ds = db.to_dataset(**flt)
            ds.save_to_disk(out)
            n = ds.num_rows
    for problem in db.problems:
        console.print(f"[yellow]skipped:[/yellow] {problem}")
    console.print(f"exported {n} run(s) to {out}")
