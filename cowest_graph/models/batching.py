"""Dynamic batching: concurrent generation requests share one `generate` call.

Requests arrive from threads (sync `invoke`, LangGraph's executor) or from the event loop (async
`ainvoke`, which never holds a thread while it waits). A single worker thread gathers requests
for up to `max_wait_s` after the first one arrives (or until `max_batch` rows are queued), runs
one batched call for the requests that share sampling parameters, and hands each its result.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

R = TypeVar("R")


class BatchFuture(Future[list[list[R]]], Generic[R]):
    """A queued request's result: one list of samples per prompt, and how long it was queued."""

    wait_s: float | None = None
    """Seconds between submitting and the start of the batch that ran it (None until then)."""


@dataclass
class _Request(Generic[R]):
    prompts: list[str]
    n: int
    key: Hashable
    params: dict[str, Any]
    solo: bool
    future: BatchFuture[R] = field(default_factory=BatchFuture)
    enqueued: float = field(default_factory=time.monotonic)

    @property
    def rows(self) -> int:
        return len(self.prompts) * self.n


RunBatch = Callable[[Sequence[str], Sequence[int], dict[str, Any]], list[list[R]]]
"""`run(prompts, ns, params)`: n_i samples for prompt i, all in one call."""


class GenerationBatcher(Generic[R]):
    """Gather concurrent requests into batched calls of `run`.

    Args:
        run: runs one batch: prompts, samples per prompt, and the shared sampling parameters.
        max_batch: the most rows (prompts x samples) in one call; a larger request runs alone.
        max_wait_s: how long the first request of a batch waits for company.
        idle_exit_s: the worker thread stops after this long without work (restarted on demand).

    Example:
        >>> batcher = GenerationBatcher(lambda ps, ns, kw: [[p.upper()] * n for p, n in zip(ps, ns)])
        >>> batcher.submit(["hi"], n=2, params={}).result()
        [['HI', 'HI']]
    """

    def __init__(
        self, run: RunBatch[R], *, max_batch: int = 16, max_wait_s: float = 0.005, idle_exit_s: float = 2.0
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        if max_wait_s < 0:
            raise ValueError(f"max_wait_s must be >= 0, got {max_wait_s}")
        self._run = run
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.idle_exit_s = idle_exit_s
        self._queue: list[_Request[R]] = []
        self._cv = threading.Condition()
        self._worker: threading.Thread | None = None
        self.batches: list[int] = []
        """Rows per executed batch, most recent last (bounded), for tests and benchmarks."""

    def submit(
        self, prompts: Sequence[str], *, n: int, params: dict[str, Any], solo: bool = False
    ) -> BatchFuture[R]:
        """Queue `n` samples for each prompt; the future resolves to one list per prompt.

        `solo=True` runs the request in a batch of its own (e.g. a seeded, reproducible call).
        """
        key = tuple(sorted((k, repr(v)) for k, v in params.items()))
        request: _Request[R] = _Request(list(prompts), n, key, dict(params), solo)
        with self._cv:
            self._queue.append(request)
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._loop, name="cowest-batcher", daemon=True)
                self._worker.start()
            self._cv.notify_all()
        return request.future

    def _take(self) -> list[_Request[R]] | None:
        """Block until a batch is ready; None when idle long enough to stop the worker."""
        with self._cv:
            idle_since = time.monotonic()
            while not self._queue:
                if not self._cv.wait(timeout=self.idle_exit_s) and not self._queue:
                    if time.monotonic() - idle_since >= self.idle_exit_s:
                        self._worker = None
                        return None
            first = self._queue[0]
            deadline = first.enqueued + self.max_wait_s
            while not first.solo:
                queued = sum(r.rows for r in self._queue if r.key == first.key and not r.solo)
                remaining = deadline - time.monotonic()
                if queued >= self.max_batch or remaining <= 0:
                    break
                self._cv.wait(timeout=remaining)
            batch, rows = [first], first.rows
            if not first.solo:
                for req in self._queue[1:]:
                    if req.key == first.key and not req.solo and rows + req.rows <= self.max_batch:
                        batch.append(req)
                        rows += req.rows
            for req in batch:
                self._queue.remove(req)
            return batch

    def _loop(self) -> None:
        while (batch := self._take()) is not None:
            live = [r for r in batch if r.future.set_running_or_notify_cancel()]
            if not live:
                continue
            started = time.monotonic()
            for r in live:
                r.future.wait_s = started - r.enqueued
            prompts = [p for r in live for p in r.prompts]
            ns = [r.n for r in live for _ in r.prompts]
            try:
                results = self._run(prompts, ns, live[0].params)
            except BaseException as exc:  # noqa: BLE001 - handed to every waiting caller
                for r in live:
                    r.future.set_exception(exc)
                continue
            self.batches = [*self.batches[-255:], sum(r.rows for r in live)]
            start = 0
            for r in live:
                r.future.set_result(results[start : start + len(r.prompts)])
                start += len(r.prompts)
