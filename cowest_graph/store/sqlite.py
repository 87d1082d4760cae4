"""SQLite trace store (the default): WAL mode, one transaction per finished run."""

from __future__ import annotations

import os
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
            raise StoreError(f"cannot open trace store {url}: {_why(path, exc)}") from exc

    @contextmanager
    def _cursor_ctx(self, write: bool) -> Iterator[Any]:
        with self._lock:
            cur = self._conn.cursor()
            try:
                cur.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                try:
                    yield cur
                except BaseException:
                    if self._conn.in_transaction:
                        cur.execute("ROLLBACK")
                    raise
                else:
                    cur.execute("COMMIT")
            except sqlite3.OperationalError as exc:
                if "full" in str(exc) or "readonly" in str(exc) or "disk I/O" in str(exc):
                    raise StoreError(
                        f"cannot write to trace store {self.display_url}: {_why(self.path, exc)}; "
                        "runs already recorded are intact"
                    ) from exc
                raise
            finally:
                cur.close()

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _why(path: Path, exc: sqlite3.DatabaseError) -> str:
    """SQLite's message, with the operating system's reason when it only says it cannot open."""
    text = str(exc)
    if "full" in text:
        return f"{text} (the disk is full or a file size limit is reached)"
    if "unable to open" in text or "readonly" in text:
        existed = path.exists()
        try:  # ask the operating system why: SQLite only says it cannot open the file
            os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o644))
        except OSError as os_exc:
            return f"{text}: {os_exc.strerror} ({path})"
        if not existed and path.stat().st_size == 0:
            path.unlink()
        if _read_only_fs(path.parent):
            return f"{text}: {path.parent} is on a read-only file system"
    return text


def _read_only_fs(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False
