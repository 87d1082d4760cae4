"""`TraceWriter`: writes finished trace records to a store without blocking an event loop, keeps
what failed for the next try, and drains its queue at a normal exit (no trace is dropped)."""

from __future__ import annotations

import asyncio
import atexit
import logging
import queue
import threading
import weakref
from typing import Any

from cowest_graph.store import TraceStore

log = logging.getLogger(__name__)

_LIVE_WRITERS: weakref.WeakSet[TraceWriter] = weakref.WeakSet()


@atexit.register
def _drain_all_writers() -> None:
    """On a normal exit, write the traces still queued by any writer."""
    for writer in list(_LIVE_WRITERS):
        writer.drain()


class TraceWriter:
    """Persists records to `store`: at once on a plain thread; from an event-loop thread through
    a queue and a daemon writer thread, so no callback ever blocks the loop (a LangGraph server
    refuses blocking I/O). A failed write is kept and retried before the next record.

    Example:
        >>> writer = TraceWriter(open_trace_store("sqlite:///traces.db"))  # doctest: +SKIP
        >>> writer.persist({"run_id": "r1", "status": "success"}); writer.written  # doctest: +SKIP
        1
    """

    def __init__(self, store: TraceStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._unsaved: list[dict[str, Any]] = []
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self.written = 0
        """How many records this writer has persisted."""
        _LIVE_WRITERS.add(self)

    def persist(self, record: dict[str, Any]) -> None:
        """Write `record` now, or hand it to the writer thread when called on an event loop."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            self._write_all([record])
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="cowest-trace-writer", daemon=True)
                self._thread.start()
        self._queue.put(record)

    def _loop(self) -> None:
        while True:
            record = self._queue.get()
            try:
                self._write_all([record])
            finally:
                self._queue.task_done()

    def _write_all(self, records: list[dict[str, Any]], *, raise_errors: bool = False) -> None:
        """Write earlier unsaved records, then these; keep whatever fails for the next try."""
        with self._lock:
            pending, self._unsaved = [*self._unsaved, *records], []
        for i, item in enumerate(pending):
            try:
                self.store.write_run(item)
            except Exception as exc:
                with self._lock:
                    self._unsaved = pending[i:] + self._unsaved
                if raise_errors:
                    raise
                log.error("cowest trace %s not written yet: %s", item.get("run_id"), exc)
                return
            with self._lock:
                self.written += 1

    def flush(self) -> None:
        """Wait for the queue, then retry what failed; raise if the store still fails."""
        self._queue.join()
        self._write_all([], raise_errors=True)

    def drain(self) -> None:
        """Wait until the writer thread has written everything queued."""
        if self._thread is not None and self._thread.is_alive():
            self._queue.join()

    @property
    def pending(self) -> int:
        """Records not yet written (queued, or the store failed)."""
        return len(self._unsaved) + self._queue.unfinished_tasks
