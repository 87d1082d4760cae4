"""The `cowest-graph` command line (typer).

- `common.py`: the app, one-line errors, model and store helpers;
- `running.py`: `ask`, `run`, `eval`, `demo`, `serve-strong`;
- `training.py`: `pairs`, `sft`, `train`;
- `traces.py`: `traces list|show|export`.
"""

from __future__ import annotations

import os

import typer

from cowest_graph.cli import improving, running, traces, training  # noqa: F401 - they register the commands
from cowest_graph.cli.common import app

__all__ = ["app", "main"]


def _expected_errors() -> list[tuple[type[BaseException], int, str]]:
    """(error type, exit status, what to do) for the failures a user can act on."""
    from cowest_graph.adapters import AdapterError
    from cowest_graph.graph import CowestRunError
    from cowest_graph.improve import ImproveLockedError
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
        (ImproveLockedError, 8, "wait for it to finish; a killed `improve` leaves no lock behind"),
        (FileNotFoundError, 2, ""),
    ]


def main() -> None:
    """The `cowest-graph` entry point: expected failures end in one or two lines on stderr with a
    distinct exit status (2 bad input, 3 strong model failed, 4 local strong server, 5 adapter,
    6 trace store, 7 training diverged, 8 adapters directory busy); `--debug` or `COWEST_DEBUG=1`
    shows the traceback."""
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
