"""What every command shares: the typer app, the console, one-line errors, and the model and
store helpers."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any, NoReturn

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


def _fail(message: str) -> NoReturn:
    """One clear error line on stderr, exit status 2."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


STORE_OPTION = typer.Option(
    "sqlite:///cowest_traces.db", "--store", envvar="COWEST_STORE", help="Trace store URL."
)


def _open_store(url: str, *, create: bool = False):  # noqa: ANN202 - a TraceStore
    """The trace store at `url`; only a command that writes traces (`create=True`) may create one.
    A `StoreError` reaches `main`, which prints it as one line with exit status 6."""
    from cowest_graph.store import open_trace_store

    return open_trace_store(url, create=create)


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


WEAK_BACKEND_HELP = (
    "Weak inference backend: hf (transformers) or llama.cpp "
    "(default: $COWEST_WEAK_BACKEND, else hf on a CUDA GPU, llama.cpp where installed, else hf)."
)


def _weak_backend(value: str | None) -> Any:
    from cowest_graph.models import BACKENDS

    if value is not None and value not in BACKENDS:
        _fail(f"unknown weak backend {value!r}: use {' or '.join(BACKENDS)}")
    return value


def _weak(  # noqa: ANN202 - a WeakModel
    adapter: str | None, max_new_tokens: int, temperature: float, backend: str | None = None
):
    from transformers.utils import logging as hf_logging

    from cowest_graph.models import load_weak_model

    # A bad adapter raises AdapterError / FileNotFoundError: `main` prints it as one line. The
    # one-second "Loading weights" bar of the 135M model is noise on a command's stderr.
    hf_logging.disable_progress_bar()
    try:
        return load_weak_model(
            backend=_weak_backend(backend),
            adapter=adapter,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
        )
    finally:
        hf_logging.enable_progress_bar()


@contextlib.contextmanager
def _strong(spec: str, max_tokens: int) -> Iterator[Any]:
    """The strong chat model for the command's duration (a local llama.cpp server for `qwen`)."""
    from cowest_graph.models.strong import open_strong_model

    with open_strong_model(spec, max_tokens=max_tokens) as model:
        yield model


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
