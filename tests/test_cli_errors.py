"""Expected CLI failures end in one or two lines on stderr with a distinct exit status.

Each case runs the real `cowest-graph` entry point as a subprocess (real weak model, real HTTP
client) and reads stderr and the exit status, as a user's shell would.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_runner import run_cli
from servers import free_port

pytestmark = pytest.mark.slow


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_unreachable_strong_endpoint_is_two_lines_and_status_3() -> None:
    down = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    out = run_cli("ask", "Name a planet.", "--strong", down, "--max-new-tokens", "4", "-k", "1")
    assert out.returncode == 3, out.stderr[-2000:]
    lines = _lines(out.stderr)
    assert len(lines) == 2, out.stderr
    assert lines[0].startswith("error: every candidate failed") and "Connection" in lines[0]
    assert down in lines[0], "the error names the endpoint that is down"
    assert lines[1].startswith("hint:") and "--strong" in lines[1]
    assert "Traceback" not in out.stderr


def test_debug_shows_the_traceback() -> None:
    down = f"http://127.0.0.1:{free_port()}/v1"
    out = run_cli("--debug", "ask", "Name a planet.", "--strong", down, "--max-new-tokens", "4", "-k", "1")
    assert out.returncode not in (0, 3)
    assert "Traceback" in out.stderr and "CowestRunError" in out.stderr


def test_missing_adapter_is_one_line_naming_it(tmp_path: Path) -> None:
    out = run_cli("ask", "hi", "--adapter", str(tmp_path / "nothing"), "--strong", "smollm2")
    assert out.returncode in (2, 5), out.stderr[-2000:]
    lines = _lines(out.stderr)
    assert 1 <= len(lines) <= 2 and "nothing" in lines[0], out.stderr
    assert "Traceback" not in out.stderr


def test_missing_strong_model_file_is_one_line_and_status_4(tmp_path: Path) -> None:
    out = run_cli("ask", "hi", "--strong", str(tmp_path / "absent.gguf"))
    assert out.returncode == 4, out.stderr[-2000:]
    lines = _lines(out.stderr)
    assert lines == [
        f"error: no model file at {tmp_path / 'absent.gguf'}: give a .gguf file, 'qwen' or 'smollm2'"
    ]


def test_store_errors_are_one_line_with_status_6_and_reading_creates_nothing(tmp_path: Path) -> None:
    out = run_cli("traces", "list", "--store", "mysql://nowhere/db")
    assert out.returncode == 6 and "unknown trace store scheme 'mysql'" in out.stderr, out.stderr
    typo = tmp_path / "typo.db"
    for args in (("pairs", str(tmp_path / "pairs"), "--store", f"sqlite:///{typo}"), ("traces", "list")):
        out = run_cli(*args, env={"COWEST_STORE": f"sqlite:///{typo}"})
        assert out.returncode == 6, out.stderr
        want = f"error: no trace store at {typo}: check the path (reading never creates a store)"
        assert _lines(out.stderr)[0] == want, out.stderr
    assert not typo.exists(), "a reading command created a store"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("run", "/nonexistent/questions.jsonl"), "question file not found: /nonexistent/questions.jsonl"),
        (("ask", "hi", "-k", "0"), "greater than or equal to 1"),
        (("pairs", "out", "--eval-fraction", "2"), "eval-fraction"),
    ],
)
def test_bad_input_is_a_short_error_with_status_2(args: tuple[str, ...], needle: str) -> None:
    out = run_cli(*args)
    assert out.returncode == 2, out.stderr[-2000:]
    assert needle in " ".join(out.stderr.split()), out.stderr
    assert "Traceback" not in out.stderr and len(_lines(out.stderr)) <= 6


def test_a_diverged_training_run_is_two_lines_and_status_7(tmp_path: Path) -> None:
    """DPO from an adapter whose LoRA weights are NaN: the first loss is NaN, the guard stops the
    run, no adapter is written, and the user reads what to do; no library warnings on the way."""
    from peft import LoraConfig, get_peft_model
    from poisoned import save_nan_adapter

    from cowest_graph.models import load_weak_model

    model = get_peft_model(
        load_weak_model(backend="hf").hf_model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"])
    )
    poisoned = save_nan_adapter(model, tmp_path / "poisoned")
    row = {
        "prompt": [{"role": "user", "content": "Name a colour."}],
        "chosen": [{"role": "assistant", "content": "Blue."}],
        "rejected": [{"role": "assistant", "content": "Seven."}],
    }
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("\n".join(json.dumps(row) for _ in range(4)) + "\n")
    adapters = tmp_path / "adapters"
    out = run_cli(
        "train", str(pairs), "--adapters", str(adapters), "--adapter", str(poisoned),
        "--max-steps", "2", "--batch-size", "2",
    )  # fmt: skip
    assert out.returncode == 7, out.stderr[-3000:]
    # (the error line may follow an interrupted progress bar on the same terminal line)
    errors = [line[line.find("error:") :] for line in _lines(out.stderr) if "error:" in line]
    hints = [line for line in _lines(out.stderr) if line.startswith("hint:")]
    assert len(errors) == len(hints) == 1, out.stderr[-3000:]
    assert "nan" in errors[0] and "no adapter was written" in hints[0], (errors, hints)
    assert "Traceback" not in out.stderr and "Warning" not in out.stderr, out.stderr[-3000:]
    assert not list(adapters.glob("v*")), "no adapter version was written"
