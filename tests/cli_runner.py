"""Run the real `cowest-graph` entry point as a subprocess, as a user's shell would."""

from __future__ import annotations

import os
import subprocess
import sys


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """`cowest-graph ARGS...` through `cowest_graph.cli:main`; stdout and stderr captured as text."""
    code = "from cowest_graph.cli import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "100", **(env or {})},
    )
