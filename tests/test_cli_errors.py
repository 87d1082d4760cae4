"""Expected CLI failures end in one or two lines on stderr with a distinct exit status.

Each case runs the real `cowest-graph` entry point as a subprocess (real weak model, real HTTP
client) and reads stderr and the exit status, as a user's shell would.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from servers import free_port

pytestmark = pytest.mark.slow


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    code = "from cowest_graph.cli import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "100", **(env or {})},
    )


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_unreachable_strong_endpoint_is_two_lines_and_status_3() -> None:
    down = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    out = _cli("ask", "Name a planet.", "--strong", down, "--max-new-tokens", "4", "-k", "1")
    assert out.returncode == 3, out.stderr[-2000:]
    lines = _lines(out.stderr)
    assert len(lines) == 2, out.stderr
    assert lines[0].startswith("error: every candidate failed") and "Connection" in lines[0]
    assert lines[1].startswith("hint:") and "--strong" in lines[1]
    assert "Traceback" not in out.stderr


def test_debug_shows_the_traceback() -> None:
    down = f"http://127.0.0.1:{free_port()}/v1"
    out = _cli("--debug", "ask", "Name a planet.", "--strong", down, "--max-new-tokens", "4", "-k", "1")
    assert out.returncode not in (0, 3)
    assert "Traceback" in out.stderr and "CowestRunError" in out.stderr


def test_missing_adapter_is_one_line_naming_it(tmp_path: Path) -> None:
    out = _cli("ask", "hi", "--adapter", str(tmp_path / "nothing"), "--strong", "smollm2")
    assert out.returncode in (2, 5), out.stderr[-2000:]
    lines = _lines(out.stderr)
    assert 1 <= len(lines) <= 2 and "nothing" in lines[0], out.stderr
    assert "Traceback" not in out.stderr


def test_missing_strong_model_file_is_one_line_and_status_4(tmp_path: Path) -> None:
    out = _cli("ask", "hi", "--strong", str(tmp_path / "absent.gguf"))
    assert out.returncode == 4, out.stderr[-2000:]
    lines = _lines(out.stderr)
    assert lines == [
        f"error: no model file at {tmp_path / 'absent.gguf'}: give a .gguf file, 'qwen' or 'smollm2'"
    ]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("traces", "list", "--store", "mysql://nowhere/db"), "mysql"),
        (("run", "/nonexistent/questions.jsonl"), "question file not found: /nonexistent/questions.jsonl"),
        (("ask", "hi", "-k", "0"), "greater than or equal to 1"),
        (("pairs", "out", "--eval-fraction", "2"), "eval-fraction"),
    ],
)
def test_bad_input_is_a_short_error_with_status_2(args: tuple[str, ...], needle: str) -> None:
    out = _cli(*args)
    assert out.returncode == 2, out.stderr[-2000:]
    assert needle in " ".join(out.stderr.split()), out.stderr
    assert "Traceback" not in out.stderr and len(_lines(out.stderr)) <= 6
