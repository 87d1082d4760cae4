"""Start a real server as a subprocess on a free loopback port, wait until it answers, stop it."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from cowest_graph.models.strong import free_port, stop_process

__all__ = ["free_port", "serve"]  # free_port: re-exported for the server tests


@contextlib.contextmanager
def serve(
    command: Sequence[str],
    ready_url: str,
    log: Path,
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 180.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `command` until `ready_url` answers 200 (or fail the test with the log's tail)."""
    with log.open("w") as out:
        proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.time() + timeout
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"{command[0]} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
                try:
                    with urllib.request.urlopen(ready_url, timeout=2) as resp:
                        if resp.status == 200:
                            break
                except OSError:
                    pass
                if time.time() > deadline:
                    tail = log.read_text()[-3000:]
                    pytest.fail(f"{command[0]} did not get ready in {timeout:.0f} s:\n{tail}")
                time.sleep(0.5)
            yield proc
        finally:
            stop_process(proc)


def required_service(env_var: str, what: str, how: str) -> str:
    """The value of `env_var`, naming an external service a test needs (a PostgreSQL server, a
    headless Chromium). In CI its absence is a failure, elsewhere a skip that says `how`."""
    value = os.environ.get(env_var)
    if not value:
        if os.environ.get("CI"):
            pytest.fail(f"CI must provide {what} but {env_var} is unset")
        pytest.skip(f"{what} is not available: set {env_var} ({how})")
    return value
