"""The strong model: any LangChain chat model, and a real one offline, Qwen2.5-Coder-1.5B-Instruct
behind llama.cpp's OpenAI-compatible server.

`resolve_chat_model` turns a command-line spec into a chat model; `open_strong_model` does the
same and serves `qwen` or a `.gguf` file for the block's duration. `local_strong()` serves a GGUF
with `python -m llama_cpp.server` on a free loopback port and hands out `ChatOpenAI` clients for
it, so the strong model is reached exactly as a user reaches OpenAI or vLLM.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from langchain_core.language_models import BaseChatModel

from cowest_graph.models.files import (
    QWEN_NAME,
    SMOLLM2_NAME,
    StrongModelError,
    embedded_gguf_path,
    fetch_strong_model,
)
from cowest_graph.models.hf import load_hf_weak_model


def port_is_free(port: int) -> bool:
    """Whether a server could listen on the loopback port now (a port in TIME_WAIT counts as free,
    as it does for the server, which binds with SO_REUSEADDR)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Ask Linux to send SIGTERM to the server when the process that started it dies (even by SIGKILL)."""
    with contextlib.suppress(Exception):
        os.setpgrp()  # its own process group: a Ctrl-C aimed at the parent is handled by the parent
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def resolve_model_file(model: str | Path | None) -> tuple[Path, str]:
    """(GGUF path, served model name) for `None`/`"qwen"` (fetched once), `"smollm2"` or a path.

    Example:
        >>> resolve_model_file("smollm2")[1]
        'smollm2-135m-instruct'
    """
    if model is None or str(model) == "qwen":
        return fetch_strong_model(), QWEN_NAME
    if str(model) == "smollm2":
        return embedded_gguf_path(), SMOLLM2_NAME
    path = Path(model).expanduser()
    if not path.is_file():
        raise StrongModelError(f"no model file at {path}: give a .gguf file, 'qwen' or 'smollm2'")
    return path, path.stem


@dataclass
class LocalStrong:
    """A running llama.cpp server: where it listens and how to talk to it."""

    base_url: str
    model_name: str
    api_key: str
    model_path: Path
    log_path: Path
    process: subprocess.Popen[bytes] = field(repr=False)

    def chat_model(self, **kwargs: Any) -> Any:
        """A `ChatOpenAI` for this server (greedy unless `temperature=` says otherwise).

        A `max_tokens` limit is sent under both OpenAI names: llama-cpp-python reads only the
        legacy `max_tokens`, ChatOpenAI sends `max_completion_tokens`.

        Example:
            >>> with local_strong("smollm2") as server:  # doctest: +SKIP
            ...     server.chat_model(max_tokens=16).invoke("Name a planet.").content
        """
        kwargs.setdefault("temperature", 0.0)
        return openai_chat_model(self.base_url, model=self.model_name, api_key=self.api_key, **kwargs)


def openai_chat_model(base_url: str, *, model: str, api_key: str, **kwargs: Any) -> Any:
    """`ChatOpenAI(base_url=...)` with a `max_tokens` limit sent under both of its OpenAI names.

    Example:
        >>> openai_chat_model("http://127.0.0.1:8080/v1", model="m", api_key="k", max_tokens=8).max_tokens
        8
    """
    from langchain_openai import ChatOpenAI

    limit = kwargs.get("max_tokens", kwargs.get("max_completion_tokens"))
    if limit is not None:
        kwargs["extra_body"] = {"max_tokens": limit, **(kwargs.get("extra_body") or {})}
    return ChatOpenAI(base_url=base_url, model=model, api_key=api_key, **kwargs)  # type: ignore[arg-type]


class local_strong:  # noqa: N801 - used like a function: `with local_strong() as server:`
    """Serve a local GGUF with llama.cpp's OpenAI-compatible server for the duration of a block.

    Starts `python -m llama_cpp.server` on a loopback port (a free one unless `port=` is given),
    waits until it answers, and yields a `LocalStrong` (`.base_url`, `.model_name`,
    `.chat_model()`). The server stops when the block exits, and also when the process that
    started it dies (Linux parent-death signal), so no orphan server is left behind. A busy port,
    a missing model file or a server that dies at start raises `StrongModelError` naming the cause.

    `model`: `None` or `"qwen"` (Qwen2.5-Coder-1.5B-Instruct, fetched once), `"smollm2"` (the
    embedded 135M model, for fast tests) or a path to a `.gguf` file. `log_path`: where the
    server writes its log (default: a temporary file, deleted when the server stops).

    Example:
        >>> with local_strong() as server:  # doctest: +SKIP
        ...     graph = create_cowest_graph(weak, server.chat_model(max_tokens=64))
        >>> async with local_strong("smollm2") as server:  # doctest: +SKIP
        ...     await server.chat_model().ainvoke("hi")
    """

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        port: int | None = None,
        n_ctx: int = 4096,
        threads: int | None = None,
        startup_timeout: float = 180.0,
        log_path: str | Path | None = None,
    ) -> None:
        self.model = model
        self.port = port
        self.n_ctx = n_ctx
        self.threads = threads or max(1, os.cpu_count() or 1)
        self.startup_timeout = startup_timeout
        self.log_path = Path(log_path) if log_path else None
        self.server: LocalStrong | None = None

    def _command(self, path: Path, name: str, port: int, key: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(path),
            "--model_alias",
            name,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--api_key",
            key,
            "--n_ctx",
            str(self.n_ctx),
            "--n_threads",
            str(self.threads),
            "--n_threads_batch",
            str(self.threads),
        ]
        # No `--cache`: llama.cpp already reuses the KV cache of the prefix that a prompt shares
        # with the previous one (the system prompt), and the RAM cache copies the whole KV state
        # after every completion (measured slower here).

    def start(self) -> LocalStrong:
        """Start the server and return once it answers (what `with` does on entry)."""
        server = self._spawn()
        try:
            self._wait_ready(server)
        except BaseException:
            stop_process(server.process)
            raise
        self.server = server
        return server

    def _spawn(self) -> LocalStrong:
        import importlib.util

        if importlib.util.find_spec("llama_cpp") is None:
            raise StrongModelError(
                "the local strong model needs llama-cpp-python's server: "
                "run `bash scripts/setup.sh --with-llama-server` (or pip install 'cowest-graph[llamacpp]')"
            )
        path, name = resolve_model_file(self.model)
        port = self.port if self.port is not None else free_port()
        if not port_is_free(port):
            raise StrongModelError(f"port {port} on 127.0.0.1 is already in use: pick another with --port")
        key = "sk-local-" + secrets.token_hex(8)
        if self.log_path is not None:
            log = self.log_path
        else:
            fd, log_name = tempfile.mkstemp(prefix="cowest-strong-", suffix=".log")
            os.close(fd)
            log = Path(log_name)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with log.open("wb") as out:
            proc = subprocess.Popen(
                self._command(path, name, port, key),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,  # noqa: PLW1509
            )
        return LocalStrong(f"http://127.0.0.1:{port}/v1", name, key, path, log, proc)

    def _wait_ready(self, server: LocalStrong) -> None:
        deadline = time.monotonic() + self.startup_timeout
        request = urllib.request.Request(
            server.base_url + "/models", headers={"Authorization": f"Bearer {server.api_key}"}
        )
        while True:
            if server.process.poll() is not None:
                tail = server.log_path.read_text(errors="replace").strip().splitlines()[-5:]
                raise StrongModelError(
                    f"the strong-model server exited at start (status {server.process.returncode}): "
                    + " | ".join(tail)
                    + f" (log: {server.log_path})"
                )
            with contextlib.suppress(OSError, urllib.error.URLError):
                with urllib.request.urlopen(request, timeout=2) as resp:
                    if resp.status == 200:
                        return
            if time.monotonic() > deadline:
                raise StrongModelError(
                    f"the strong-model server did not answer within {self.startup_timeout:.0f} s "
                    f"(log: {server.log_path})"
                )
            time.sleep(0.25)

    def stop(self) -> None:
        """Stop the server (what `with` does on exit); safe to call twice.

        The temporary log is deleted with a server that was still running; a server that died on
        its own (or failed to start) keeps its log for the error that names it, and a `log_path=`
        given by the caller is always kept."""
        if self.server is not None:
            died = self.server.process.poll() is not None
            stop_process(self.server.process)
            if self.log_path is None and not died:
                self.server.log_path.unlink(missing_ok=True)
            self.server = None

    def __enter__(self) -> LocalStrong:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    async def __aenter__(self) -> LocalStrong:
        import asyncio

        # Spawn in this thread (the parent-death signal follows the thread that forked), then wait
        # for readiness off the event loop.
        server = self._spawn()
        try:
            await asyncio.to_thread(self._wait_ready, server)
        except BaseException:
            stop_process(server.process)
            raise
        self.server = server
        return server

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def stop_process(proc: subprocess.Popen[bytes], *, grace_s: float = 20.0) -> None:
    """Stop a server process: SIGTERM, then SIGKILL if it has not exited after `grace_s` seconds.

    Example:
        >>> stop_process(subprocess.Popen(["sleep", "60"]))
    """
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


LOCAL_SERVED = ("qwen",)
"""Specs that `open_strong_model` serves with llama.cpp (besides any path to a `.gguf` file)."""


def resolve_chat_model(spec: str | None, *, local_max_new_tokens: int = 128, **kwargs: Any) -> BaseChatModel:
    """Turn a command-line model spec into a chat model (no server started: see `open_strong_model`).

    `None`, `"local"` or `"smollm2"`: the general embedded SmolLM2 in-process (the fast 135M
    stand-in); a path: a local HF model directory (both local: greedy, at most
    `local_max_new_tokens` new tokens, unless `kwargs` say otherwise); `http(s)://...`: an
    OpenAI-compatible endpoint via `ChatOpenAI(base_url=...)` (model name from
    `$COWEST_STRONG_MODEL`, key from `$OPENAI_API_KEY`; a `max_tokens` limit is sent under both its
    OpenAI names, so servers that only read the legacy one honour it too); anything else goes to
    LangChain's `init_chat_model` (e.g. `"openai:gpt-4o-mini"`).

    Example:
        >>> strong = resolve_chat_model("openai:gpt-4o-mini")  # doctest: +SKIP
    """
    local = {"max_new_tokens": local_max_new_tokens, "temperature": 0.0, **kwargs}
    if spec in (None, "", "local", "smollm2"):
        return load_hf_weak_model(**local)
    if spec.startswith(("http://", "https://")):
        return openai_chat_model(
            spec,
            model=os.environ.get("COWEST_STRONG_MODEL", "default"),
            api_key=os.environ.get("OPENAI_API_KEY", "not-needed"),
            **kwargs,
        )
    if Path(spec).expanduser().is_dir():
        return load_hf_weak_model(spec, **local)
    from langchain.chat_models import init_chat_model

    return init_chat_model(spec, **kwargs)


def serves_locally(spec: str | None) -> bool:
    """Whether `open_strong_model(spec)` starts a llama.cpp server (`"qwen"` or a `.gguf` path).

    Example:
        >>> serves_locally("qwen"), serves_locally("openai:gpt-4o-mini")
        (True, False)
    """
    return spec is not None and (spec in LOCAL_SERVED or spec.endswith(".gguf"))


@contextlib.contextmanager
def open_strong_model(
    spec: str | None, *, max_tokens: int = 128, n_ctx: int = 4096, **kwargs: Any
) -> Iterator[BaseChatModel]:
    """The strong chat model for `spec`, with a llama.cpp server running for the block when needed.

    `"qwen"` (Qwen2.5-Coder-1.5B-Instruct, fetched once) or a `.gguf` path: served by
    `local_strong` and reached through `ChatOpenAI` (greedy, at most `max_tokens`); anything else
    as `resolve_chat_model(spec)`.

    Example:
        >>> with open_strong_model("qwen", max_tokens=48) as strong:  # doctest: +SKIP
        ...     strong.invoke("What is 17 + 25?").content
    """
    if serves_locally(spec):
        with local_strong(spec, n_ctx=n_ctx) as server:
            yield server.chat_model(max_tokens=max_tokens, **kwargs)
        return
    if spec is not None and spec.startswith(("http://", "https://")):
        kwargs["max_tokens"] = max_tokens
    yield resolve_chat_model(spec, local_max_new_tokens=max_tokens, **kwargs)
