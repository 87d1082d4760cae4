"""`improve` (rounds of traces -> pairs -> DPO -> gate -> promotion), `gate` (is a candidate adapter
better than the current one?) and `adapters list | promote | rollback` (`DIR/current`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from cowest_graph.cli.common import (
    STORE_OPTION,
    STRONG_HELP,
    WEAK_BACKEND_HELP,
    _fail,
    _scorer,
    _strong,
    _weak,
    _weak_backend,
    app,
    console,
)

adapters_app = typer.Typer(
    help="Versioned adapters: list them, promote one, roll back.", no_args_is_help=True
)
app.add_typer(adapters_app, name="adapters")


@app.command()
def gate(
    candidate: str = typer.Argument(..., help="Candidate adapter directory."),
    against: str = typer.Option(..., "--against", help="The current adapter directory."),
    eval_file: str = typer.Option(..., "--eval", help="Held-out questions (.jsonl/.csv with references)."),
    strong: str = typer.Option("local", help=STRONG_HELP),
    scorer: str = typer.Option("answer", help="answer (final Answer: line) | contains"),
    answer_format: str = typer.Option("", help="Answer-format instruction appended to every prompt."),
    alpha: float = typer.Option(0.05, min=0.0, max=1.0, help="McNemar level."),
    max_new_tokens: int = typer.Option(48, min=1),
    weak_backend: str | None = typer.Option(None, "--weak-backend", help=WEAK_BACKEND_HELP),
    promote_into: str | None = typer.Option(
        None, "--promote", help="Adapters root: point ROOT/current at the candidate when it passes."
    ),
) -> None:
    """Evaluate CoWest with the current and the candidate adapter on the same held-out questions
    and print the gate's decision as JSON. Exit status 0: promote; 3: reject."""
    import asyncio

    from cowest_graph.adapters import promote, read_manifest, write_manifest
    from cowest_graph.data import load_questions
    from cowest_graph.evaluate import answer_judge, keyword_judge
    from cowest_graph.gate import GateConfig, gate_decision
    from cowest_graph.improve import evaluate_adapter
    from cowest_graph.prompts import CowestPrompts

    try:
        examples = load_questions(eval_file)
    except (ValueError, FileNotFoundError) as exc:
        _fail(str(exc))
    if scorer not in ("answer", "contains"):
        _fail(f"unknown scorer {scorer!r}: use answer or contains")
    judge = answer_judge if scorer == "answer" else keyword_judge
    weak = _weak(None, max_new_tokens, 0.0, weak_backend)  # evaluate_adapter loads each adapter
    prompts = CowestPrompts().with_format(answer_format)

    async def both(strong_model: Any) -> tuple[Any, Any]:
        kw: dict[str, Any] = {"prompts": prompts, "scorer": _scorer(scorer), "judge": judge}
        current = await evaluate_adapter("current", weak, against, examples, strong_model, **kw)
        new = await evaluate_adapter("candidate", weak, candidate, examples, strong_model, **kw)
        return current, new

    with _strong(strong, max_new_tokens) as strong_model:
        current, new = asyncio.run(both(strong_model))
    decision = gate_decision(current, new, examples, GateConfig(alpha=alpha))
    manifest = read_manifest(candidate)
    if manifest is not None:
        write_manifest(candidate, {**manifest, "gate": decision.as_dict()})
    if decision.promote and promote_into:
        promote(promote_into, Path(candidate).name)
    print(json.dumps(decision.as_dict(), indent=2, default=str))
    raise typer.Exit(0 if decision.promote else 3)


@adapters_app.command("list")
def list_cmd(root: str = typer.Argument(..., help="Adapters root (holds v0001/, v0002/, ...).")) -> None:
    """Every version: kind, parent, pairs, held-out accuracy, gate decision, date; * = current."""
    from cowest_graph.adapters import list_adapters

    rows = list_adapters(root)
    if not rows:
        _fail(f"no adapter versions under {root}")
    table = Table(title=str(root))
    for col in ("", "version", "kind", "parent", "pairs", "held-out acc", "gate", "created"):
        table.add_column(col)
    for r in rows:
        acc = r["held_out_accuracy"]
        table.add_row(
            "*" if r["current"] else "",
            r["version"],
            str(r["kind"] or "-"),
            str(r["parent"] or "-"),
            str(r["pairs"] if r["pairs"] is not None else "-"),
            "-" if acc is None else f"{acc:.3f}",
            str(r["gate"] or "-"),
            str(r["created_at"] or "-"),
        )
    console.print(table)


@adapters_app.command("promote")
def promote_cmd(
    root: str = typer.Argument(..., help="Adapters root."),
    version: str = typer.Argument(..., help="The version to make current, e.g. v0002."),
) -> None:
    """Point ROOT/current at VERSION (atomically), without a gate."""
    from cowest_graph.adapters import promote

    console.print(f"current -> {promote(root, version)}")


@adapters_app.command("rollback")
def rollback_cmd(
    root: str = typer.Argument(..., help="Adapters root."),
    to: str | None = typer.Option(None, help="Version to go back to (default: the one promoted before)."),
) -> None:
    """Point ROOT/current back at the previously promoted version (or --to VERSION)."""
    from cowest_graph.adapters import rollback

    console.print(f"current -> {rollback(root, to)}")


@app.command()
def improve(
    adapters: str = typer.Option(
        ..., "--adapters", help="Adapters root; DIR/current is the starting adapter."
    ),
    eval_file: str = typer.Option(..., "--eval", help="Held-out questions for the gate (with references)."),
    store: str = STORE_OPTION,
    rounds: int = typer.Option(1, min=1, help="Improvement rounds."),
    collect: str | None = typer.Option(None, help="Run the graph over these questions first, each round."),
    since: float | None = typer.Option(None, help="Only traces started after this UNIX time."),
    strong: str = typer.Option("qwen", help=STRONG_HELP),
    answer_format: str = typer.Option("", help="Answer-format instruction appended to every prompt."),
    alpha: float = typer.Option(0.05, min=0.0, max=1.0, help="McNemar level of the gate."),
    min_margin: float = typer.Option(0.1, min=0.0, max=1.0, help="Least Delta gap of a pair."),
    drafts: int = typer.Option(4, "--drafts", "-k", min=1, help="Weak drafts per collected question."),
    weak_backend: str | None = typer.Option(None, "--weak-backend", help=WEAK_BACKEND_HELP),
) -> None:
    """Rounds of: unused traces -> pairs -> DPO from DIR/current -> gate on held-out questions ->
    promote. Resumable; writes DIR/report.json and DIR/report.html."""
    from cowest_graph.gate import GateConfig
    from cowest_graph.improve import improve as run_improve
    from cowest_graph.prompts import CowestPrompts

    def show(number: int, step: str) -> None:
        console.print(f"round {number}: {step}")

    records = run_improve(
        store,
        adapters,
        eval_file,
        strong=strong,
        rounds=rounds,
        collect=collect,
        since=since,
        prompts=CowestPrompts().with_format(answer_format),
        gate=GateConfig(alpha=alpha),
        min_margin=min_margin,
        num_drafts=drafts,
        weak_backend=_weak_backend(weak_backend),
        on_step=show,
    )
    for rec in records:
        verdict = "promoted" if rec.get("promoted") else "kept the current adapter"
        reasons = "; ".join(
            (rec.get("gate") or {}).get("reasons") or ([rec["skipped"]] if rec.get("skipped") else [])
        )
        console.print(
            f"round {rec['round']}: {rec.get('pairs', 0)} pairs, {verdict}"
            + (f" ({reasons})" if reasons else "")
        )
    console.print(f"report: {Path(adapters) / 'report.html'}")
