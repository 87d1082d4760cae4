"""SQLite trace store (the default): WAL mode, one transaction per finished run."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    pass

from cowest_graph.store.base import StoreError, TraceStore, _Dialect


class SQLiteTraceStore(TraceStore):
    """SQLite in WAL mode: one transaction per finished run, safe for several processes."""

    def __init__(self, url: str, path: Path, *, create: bool = True) -> None:
        super().__init__(url)
        self._dialect = _Dialect(param="?", real="REAL")
        self.path = path
        if not create and not path.is_file():
            raise StoreError(f"no trace store at {path}: check the path (reading never creates a store)")
        if path.parent and not path.parent.exists():
            raise StoreError(f"cannot open trace store {url}: directory {path.parent} does not exist")
        try:
            self._conn = sqlite3.connect(
                str(path), timeout=30.0, isolation_level=None, check_same_thread=False
            )
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")  # durable against process crashes
            self._conn.execute("PRAGMA busy_timeout=30000")
            with self._cursor_ctx(write=True) as cur:
                self._migrate(cur)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open trace store {url}: {exc}") from exc

    @contextmanager
    def _cursor_ctx(self, write: bool) -> Iterator[Any]:
        with self._lock:
            cur = self._conn.cursor()
            cur.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            else:
                cur.execute("COMMIT")
            finally:
                cur.close()

    def close(self) -> None:
        with self._lock:
            self._conn.close()
