"""Shared helpers for the benchmarks: result files and tables."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

RESULTS = Path(__file__).parent / "results"
_START = time.perf_counter()


def step(message: str) -> None:
    """A progress line with the time since the benchmark started (long runs show what they do)."""
    elapsed = time.perf_counter() - _START
    print(f"[{int(elapsed // 60):02d}:{int(elapsed % 60):02d}] {message}", flush=True)


def machine() -> dict[str, Any]:
    import torch

    return {
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def save(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **payload}, indent=2, default=str))
    return path


def print_table(title: str, rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    columns = list(dict.fromkeys(col for row in rows for col in row))  # a row may lack some: "-"
    for col in columns:
        table.add_column(str(col))
    for row in rows:
        cells = (row.get(col, "-") for col in columns)
        table.add_row(*(f"{v:.4g}" if isinstance(v, float) else str(v) for v in cells))
    Console(width=140).print(table)
