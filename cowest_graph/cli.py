"""The `cowest-graph` command line (typer)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import typer  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

app = typer.Typer(help="CoWest weak-strong collaboration for LangGraph.", no_args_is_help=True)
console = Console()
STRONG_HELP = (
    "Strong model: qwen (Qwen2.5-Coder-1.5B on a local llama.cpp server) | smollm2 (135M, in-process) "
    "| openai:MODEL | http(s)://URL/v1 | a .gguf file"
)


@app.callback()
def _root(
    debug: bool = typer.Option(
        False, "--debug", help="Show full tracebacks (also: COWEST_DEBUG=1).", envvar="COWEST_DEBUG"
    ),
) -> None:
    """CoWest weak-strong collaboration for LangGraph."""
    if debug:
        os.environ["COWEST_DEBUG"] = "1"


@app.command()
def ask(
    question: str,
    drafts: int = typer.Option(2, "--drafts", "-k", min=1, help="Weak drafts per round."),
    strong: str = typer.Option("local", help=STRONG_HELP),
    adapter: str | None = typer.Option(None, help="LoRA adapter directory for the weak model."),
    reference: str | None = typer.Option(None, help="Reference answer (token-F1 scorer)."),
    max_new_tokens: int = typer.Option(96, min=1, help="Tokens per weak draft and local answer."),
) -> None:
    """Answer one question with the cowest subgraph and show drafts, answers and scores."""
    from cowest_graph import create_cowest_graph, token_f1

    weak = _weak(adapter, max_new_tokens, 0.8)
    with _strong(strong, max_new_tokens) as strong_model:
        graph = create_cowest_graph(
            weak, strong_model, scorer=token_f1 if reference else None, num_drafts=drafts
        ).compile()
        out = graph.invoke({"question": question, "reference": reference})
    _print_candidates(out)


def _fail(message: str) -> None:
    """One clear error line on stderr, exit status 2."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


traces_app = typer.Typer(help="Inspect and export recorded traces.", no_args_is_help=True)
app.add_typer(traces_app, name="traces")

STORE_OPTION = typer.Option(
    "sqlite:///cowest_traces.db", "--store", envvar="COWEST_STORE", help="Trace store URL."
)


def _open_store(url: str):  # noqa: ANN202 - a TraceStore
    from cowest_graph.store import StoreError, open_trace_store

    try:
        return open_trace_store(url)
    except StoreError as exc:
        _fail(str(exc))


def _filters(
    thread: str | None,
    adapter: str | None,
    model: str | None,
    min_score: float | None,
    status: str | None,
    since_hours: float | None,
) -> dict:
    import time

    return {
        "thread_id": thread,
        "adapter_version": adapter,
        "model": model,
        "min_score": min_score,
        "status": status,
        "since": None if since_hours is None else time.time() - since_hours * 3600,
    }


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
    with warnings.catch_warnings():
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


@app.command()
def pairs(
    out: str = typer.Argument(..., help="Directory to save the pairs (a datasets.DatasetDict)."),
    store: str = STORE_OPTION,
    min_margin: float = typer.Option(
        0.1, min=0.0, max=1.0, help="Least influence gap for a pair (scores in [0, 1])."
    ),
    max_pairs_per_prompt: int = typer.Option(4, min=1, help="At most this many pairs per weak prompt."),
    eval_fraction: float = typer.Option(0.1, min=0.0, max=0.9, help="Share of questions held out for eval."),
    seed: int = typer.Option(0, help="Seed of the grouped split."),
    adapter: str | None = typer.Option(None, help="Only runs drafted with this adapter version."),
) -> None:
    """Build collaborative-feedback preference pairs from the traces in a store."""
    import json

    from cowest_graph.feedback import build_preference_pairs
    from cowest_graph.store import RunFilter

    db = _open_store(store)
    try:
        built = build_preference_pairs(
            db,
            min_margin=min_margin,
            max_pairs_per_prompt=max_pairs_per_prompt,
            eval_fraction=eval_fraction,
            seed=seed,
            flt=RunFilter(adapter_version=adapter),
        )
    except ValueError as exc:
        _fail(str(exc))
    built.save_to_disk(out)
    report = built.report.as_dict()
    table = Table(title=f"preference pairs -> {out}")
    table.add_column("what")
    table.add_column("value")
    for key, value in report.items():
        table.add_row(key, json.dumps(value) if isinstance(value, dict) else str(value))
    console.print(table)


def _train_config(kind: str, **values: object):  # noqa: ANN202 - an SFT or DPO config
    from cowest_graph.train import DPOTrainConfig, SFTTrainConfig

    cls = SFTTrainConfig if kind == "sft" else DPOTrainConfig
    return cls(**{k: v for k, v in values.items() if v is not None})


@app.command()
def sft(
    data: str = typer.Argument(..., help="question/answer data: .jsonl, .csv or a saved dataset."),
    adapters: str = typer.Option("adapters", help="Adapters root; a new version is written under it."),
    base_model: str | None = typer.Option(None, help="Local HF model dir (default: embedded SmolLM2)."),
    max_steps: int | None = typer.Option(None, help="Optimizer steps (default: one epoch)."),
    epochs: float | None = typer.Option(None, help="Epochs when --max-steps is not given."),
    learning_rate: float | None = typer.Option(None),
    batch_size: int | None = typer.Option(None),
    save_steps: int | None = typer.Option(None, help="Checkpoint every N steps."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run."),
) -> None:
    """Specialise the weak model on domain data (LoRA SFT)."""
    from cowest_graph.train import train_sft

    config = _train_config(
        "sft",
        max_steps=max_steps,
        num_train_epochs=epochs,
        learning_rate=learning_rate,
        per_device_train_batch_size=batch_size,
        save_steps=save_steps,
    )
    try:
        result = train_sft(data, output_dir=adapters, base_model=base_model, config=config, resume=resume)
    except (ValueError, FileNotFoundError) as exc:
        _fail(str(exc))
    console.print(f"adapter {result.version} -> {result.adapter_dir}  metrics: {result.metrics}")


@app.command()
def train(
    pairs_dir: str = typer.Argument(..., help="Pairs from `cowest-graph pairs` (or a .jsonl)."),
    adapters: str = typer.Option("adapters", help="Adapters root; a new version is written under it."),
    adapter: str | None = typer.Option(None, help="Start from this adapter (e.g. the SFT one)."),
    base_model: str | None = typer.Option(None, help="Local HF model dir (default: embedded SmolLM2)."),
    max_steps: int | None = typer.Option(None, help="Optimizer steps (default: one epoch)."),
    epochs: float | None = typer.Option(None),
    learning_rate: float | None = typer.Option(None),
    beta: float | None = typer.Option(None, help="DPO beta."),
    batch_size: int | None = typer.Option(None),
    save_steps: int | None = typer.Option(None, help="Checkpoint every N steps."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run."),
) -> None:
    """Align the weak model with collaborative-feedback DPO."""
    from cowest_graph.adapters import AdapterError
    from cowest_graph.train import TrainingDivergedError, train_dpo

    config = _train_config(
        "dpo",
        max_steps=max_steps,
        num_train_epochs=epochs,
        learning_rate=learning_rate,
        beta=beta,
        per_device_train_batch_size=batch_size,
        save_steps=save_steps,
    )
    try:
        result = train_dpo(
            pairs_dir,
            output_dir=adapters,
            adapter=adapter,
            base_model=base_model,
            config=config,
            resume=resume,
        )
    except (ValueError, FileNotFoundError, AdapterError, TrainingDivergedError) as exc:
        _fail(str(exc))
    console.print(f"adapter {result.version} -> {result.adapter_dir}  metrics: {result.metrics}")


def _scorer(spec: str):  # noqa: ANN202 - a Scorer or None (the strong model judges)
    from cowest_graph import critique

    if spec == "judge":
        return None
    if spec.startswith("label:"):
        return critique.label_match([x.strip() for x in spec[6:].split(",") if x.strip()])
    named = {
        "contains": critique.contains_match,
        "answer": critique.answer_match,
        "exact": critique.exact_match,
        "f1": critique.token_f1,
        "choice": critique.choice_match,
    }
    if spec not in named:
        _fail(f"unknown scorer {spec!r}: use contains, answer, exact, f1, choice, label:A,B,... or judge")
    return named[spec]


def _weak(adapter: str | None, max_new_tokens: int, temperature: float):  # noqa: ANN202 - a WeakModel
    from transformers.utils import logging as hf_logging

    from cowest_graph.models import load_weak_model

    # A bad adapter raises AdapterError / FileNotFoundError: `main` prints it as one line. The
    # one-second "Loading weights" bar of the 135M model is noise on a command's stderr.
    hf_logging.disable_progress_bar()
    try:
        return load_weak_model(adapter=adapter, max_new_tokens=max_new_tokens, temperature=temperature)
    finally:
        hf_logging.enable_progress_bar()


@contextlib.contextmanager
def _strong(spec: str, max_tokens: int) -> Iterator[Any]:
    """The strong chat model for the command's duration (a local llama.cpp server for `qwen`)."""
    from cowest_graph.models.strong import open_strong_model

    with open_strong_model(spec, max_tokens=max_tokens) as model:
        yield model


@app.command("run")
def run_cmd(
    data: str = typer.Argument(..., help="Questions: .jsonl or .csv with question[, reference, id]."),
    store: str = STORE_OPTION,
    drafts: int = typer.Option(4, "--drafts", "-k", min=1, help="Weak drafts per question."),
    strong: str = typer.Option("local", help=STRONG_HELP),
    adapter: str | None = typer.Option(None, help="LoRA adapter directory for the weak model."),
    scorer: str = typer.Option(
        "contains", help="contains | answer (final Answer: line) | exact | f1 | choice | label:A,B | judge"
    ),
    measure_influence: bool = typer.Option(True, help="Also run strong alone (the Delta baseline)."),
    concurrency: int = typer.Option(4, min=1, help="Runs in flight at once."),
    max_new_tokens: int = typer.Option(48, min=1, help="Tokens per weak draft (and local strong answer)."),
    temperature: float = typer.Option(0.9, help="Weak sampling temperature."),
    resume: bool = typer.Option(True, help="Skip questions that already have a successful trace."),
) -> None:
    """Collect traces: run the cowest graph over a question file (resumable)."""
    import asyncio

    from cowest_graph import create_cowest_graph
    from cowest_graph.collect import acollect
    from cowest_graph.data import load_questions
    from cowest_graph.tracing import CowestTracer

    try:
        examples = load_questions(data)
    except (ValueError, FileNotFoundError) as exc:
        _fail(str(exc))
    db = _open_store(store)
    weak = _weak(adapter, max_new_tokens, temperature)
    with _strong(strong, max_new_tokens) as strong_model:
        graph = create_cowest_graph(
            weak, strong_model, scorer=_scorer(scorer), num_drafts=drafts, measure_influence=measure_influence
        ).compile()
        tracer = CowestTracer(db)
        report = asyncio.run(acollect(graph, examples, tracer, concurrency=concurrency, resume=resume))
    console.print(
        f"{report.total} questions: {report.succeeded} recorded, {report.skipped} already done, "
        f"{report.failed} failed (traced with their errors) -> {db.display_url}"
    )


@app.command("eval")
def eval_cmd(
    data: str = typer.Argument(..., help="Held-out questions with references (.jsonl or .csv)."),
    adapter: str | None = typer.Option(None, help="LoRA adapter directory for the weak model."),
    strong: str = typer.Option("local", help=STRONG_HELP),
    labels: str | None = typer.Option(None, help="Comma-separated labels for a classification task."),
    scorer: str = typer.Option(
        "contains", help="contains (reference in the reply) | answer (final Answer: line)"
    ),
    answer_format: str = typer.Option("", help="Answer-format instruction appended to every prompt."),
    max_new_tokens: int = typer.Option(48, min=1),
    out: str | None = typer.Option(None, help="Write the results as JSON here."),
) -> None:
    """Evaluate weak alone, strong alone and CoWest on held-out questions (reference withheld)."""
    import asyncio
    import json

    from cowest_graph import create_cowest_graph
    from cowest_graph.data import load_questions
    from cowest_graph.evaluate import (
        answer_judge,
        evaluate_graph,
        evaluate_model_alone,
        keyword_judge,
        label_judge,
    )
    from cowest_graph.loop import print_results
    from cowest_graph.prompts import CowestPrompts

    try:
        examples = load_questions(data)
    except (ValueError, FileNotFoundError) as exc:
        _fail(str(exc))
    label_list = [x.strip() for x in labels.split(",")] if labels else None
    if scorer not in ("contains", "answer"):
        _fail(f"unknown scorer {scorer!r}: use contains or answer")
    judge = label_judge(label_list) if label_list else answer_judge if scorer == "answer" else keyword_judge
    weak = _weak(adapter, max_new_tokens, 0.0)
    prompts = CowestPrompts().with_format(answer_format)
    common: dict[str, Any] = {"judge": judge, "labels": label_list, "progress": True}

    async def go(strong_model: Any) -> list[Any]:
        graph = create_cowest_graph(weak, strong_model, scorer=_scorer(scorer), prompts=prompts).compile()
        return [
            await evaluate_model_alone(
                "weak alone", weak, examples, messages=prompts.weak_messages, **common
            ),
            await evaluate_model_alone(
                "strong alone", strong_model, examples, prompts=prompts, counts_as_strong=True, **common
            ),
            await evaluate_graph("CoWest", graph, examples, **common),
        ]

    with _strong(strong, max_new_tokens) as strong_model:
        results = asyncio.run(go(strong_model))
    print_results(results, console, title=f"{data} (n={len(examples)})")
    if out:
        from pathlib import Path

        Path(out).write_text(json.dumps([r.summary() for r in results], indent=2))


@app.command()
def demo(
    workdir: str = typer.Option("runs/demo", help="Where adapters, traces and results go."),
    strong: str = typer.Option("qwen", help=STRONG_HELP),
    quick: bool = typer.Option(False, "--quick", help="A few questions only (a smoke run)."),
) -> None:
    """The main job: SFT -> collect -> pairs -> DPO -> evaluate (embedded weak, local strong model)."""
    from pathlib import Path

    from cowest_graph.loop import LoopConfig, run_loop

    config = LoopConfig(workdir=Path(workdir), strong=strong, limit=6 if quick else None)
    if quick:
        config.sft.num_train_epochs = 2
        config.dpo.num_train_epochs = 1
        config.num_drafts = 2
    run_loop(config, console=console)


@app.command("serve-strong")
def serve_strong(
    model: str = typer.Option("qwen", help="qwen | smollm2 | a .gguf file"),
    port: int = typer.Option(8080, min=1, max=65535, help="Loopback port to listen on."),
    n_ctx: int = typer.Option(4096, min=256, help="Context length."),
    threads: int | None = typer.Option(None, help="CPU threads (default: all cores)."),
) -> None:
    """Serve the local strong model in the foreground (for Studio / `langgraph dev`) until Ctrl-C."""
    import time

    from cowest_graph.models.strong import local_strong

    try:
        with local_strong(model, port=port, n_ctx=n_ctx, threads=threads) as server:
            console.print(f"serving {server.model_name} at {server.base_url} (Ctrl-C stops it)")
            console.print("for `langgraph dev` / the studio factory, export:")
            typer.echo(f"export COWEST_STRONG={server.base_url}")
            typer.echo(f"export COWEST_STRONG_MODEL={server.model_name}")
            typer.echo(f"export OPENAI_API_KEY={server.api_key}")
            while server.process.poll() is None:
                time.sleep(0.5)
            _fail(
                f"the strong-model server exited with status {server.process.returncode} "
                f"(log: {server.log_path})"
            )
    except KeyboardInterrupt:
        console.print("stopped")


def _print_candidates(out: dict) -> None:
    table = Table(title=out["question"], show_lines=True)
    for col in ("id", "draft", "answer", "score"):
        table.add_column(col)
    for cand in out["candidates"]:
        score = cand.get("score")
        table.add_row(
            cand["id"],
            (cand.get("draft") or "")[:200],
            (cand.get("answer") or cand.get("error") or "")[:200],
            "-" if score is None else f"{score:.2f}",
        )
    console.print(table)
    console.print(f"[bold]answer:[/bold] {out['answer']}")


def _expected_errors() -> list[tuple[type[BaseException], int, str]]:
    """(error type, exit status, what to do) for the failures a user can act on."""
    from cowest_graph.adapters import AdapterError
    from cowest_graph.graph import CowestRunError
    from cowest_graph.models.strong import StrongModelError
    from cowest_graph.store import StoreError
    from cowest_graph.train import TrainingDivergedError

    return [
        (
            CowestRunError,
            3,
            "the strong model gave no answer: check --strong and that its endpoint is up and accepts the key",
        ),
        (StrongModelError, 4, ""),
        (AdapterError, 5, "give --adapter a directory written by `cowest-graph sft` or `cowest-graph train`"),
        (StoreError, 6, "check --store (sqlite:///path.db or postgresql://...)"),
        (TrainingDivergedError, 7, "lower the learning rate or check the data; no adapter was written"),
        (FileNotFoundError, 2, ""),
    ]


def main() -> None:
    """The `cowest-graph` entry point: expected failures end in one or two lines on stderr with a
    distinct exit status (2 bad input, 3 strong model failed, 4 local strong server, 5 adapter,
    6 trace store, 7 training diverged); `--debug` or `COWEST_DEBUG=1` shows the traceback."""
    try:
        app()
    except Exception as exc:
        if os.environ.get("COWEST_DEBUG") == "1":
            raise
        for kind, status, hint in _expected_errors():
            if isinstance(exc, kind):
                text = " ".join(str(exc).split()) or type(exc).__name__
                typer.echo(f"error: {text[:600]}", err=True)
                if hint:
                    typer.echo(f"hint: {hint} (--debug shows the traceback)", err=True)
                raise SystemExit(status) from None
        raise


if __name__ == "__main__":  # pragma: no cover
    main()
