"""`cowest-graph ask|run|eval|demo|serve-strong`: run the graph, evaluate it, serve the strong model."""

from __future__ import annotations

from typing import Any

import typer

from cowest_graph.cli.common import (
    STORE_OPTION,
    STRONG_HELP,
    WEAK_BACKEND_HELP,
    _fail,
    _open_store,
    _print_candidates,
    _scorer,
    _strong,
    _weak,
    _weak_backend,
    app,
    console,
)


@app.command()
def ask(
    question: str,
    drafts: int = typer.Option(2, "--drafts", "-k", min=1, help="Weak drafts per round."),
    strong: str = typer.Option("local", help=STRONG_HELP),
    adapter: str | None = typer.Option(None, help="LoRA adapter directory for the weak model."),
    reference: str | None = typer.Option(None, help="Reference answer (token-F1 scorer)."),
    max_new_tokens: int = typer.Option(96, min=1, help="Tokens per weak draft and local answer."),
    weak_backend: str | None = typer.Option(None, "--weak-backend", help=WEAK_BACKEND_HELP),
) -> None:
    """Answer one question with the cowest subgraph and show drafts, answers and scores."""
    from cowest_graph import create_cowest_graph, token_f1

    weak = _weak(adapter, max_new_tokens, 0.8, weak_backend)
    with _strong(strong, max_new_tokens) as strong_model:
        graph = create_cowest_graph(
            weak, strong_model, scorer=token_f1 if reference else None, num_drafts=drafts
        ).compile()
        out = graph.invoke({"question": question, "reference": reference})
    _print_candidates(out)


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
    weak_backend: str | None = typer.Option(None, "--weak-backend", help=WEAK_BACKEND_HELP),
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
    db = _open_store(store, create=True)
    weak = _weak(adapter, max_new_tokens, temperature, weak_backend)
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
    weak_backend: str | None = typer.Option(None, "--weak-backend", help=WEAK_BACKEND_HELP),
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
    weak = _weak(adapter, max_new_tokens, 0.0, weak_backend)
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
    weak_backend: str | None = typer.Option(None, "--weak-backend", help=WEAK_BACKEND_HELP),
) -> None:
    """The main job: SFT -> collect -> pairs -> DPO -> evaluate (embedded weak, local strong model)."""
    from pathlib import Path

    from cowest_graph.loop import LoopConfig, run_loop

    config = LoopConfig(
        workdir=Path(workdir),
        strong=strong,
        limit=6 if quick else None,
        weak_backend=_weak_backend(weak_backend),
    )
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
