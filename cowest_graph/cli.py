"""The `cowest-graph` command line (typer)."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import typer  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

app = typer.Typer(help="CoWest weak-strong collaboration for LangGraph.", no_args_is_help=True)
console = Console()


@app.callback()
def _root() -> None:
    """CoWest weak-strong collaboration for LangGraph."""


@app.command()
def ask(
    question: str,
    drafts: int = typer.Option(2, "--drafts", "-k", help="Weak drafts per round."),
    strong: str = typer.Option("local", help="Strong model spec: local | openai:MODEL | http(s)://URL"),
    adapter: str | None = typer.Option(None, help="LoRA adapter directory for the weak model."),
    reference: str | None = typer.Option(None, help="Reference answer (token-F1 scorer)."),
    max_new_tokens: int = typer.Option(96, help="Tokens per weak draft and local answer."),
) -> None:
    """Answer one question with the cowest subgraph and show drafts, answers and scores."""
    from cowest_graph import create_cowest_graph, load_weak_model, resolve_chat_model, token_f1

    weak = load_weak_model(adapter=adapter, max_new_tokens=max_new_tokens)
    strong_model = resolve_chat_model(strong, **({"max_new_tokens": max_new_tokens, "temperature": 0.0}
                                                  if strong in ("local", "smollm2") else {}))
    graph = create_cowest_graph(
        weak, strong_model, scorer=token_f1 if reference else None, num_drafts=drafts
    ).compile()
    out = graph.invoke({"question": question, "reference": reference})
    _print_candidates(out)


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


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
