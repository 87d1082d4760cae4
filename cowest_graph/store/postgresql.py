"""PostgreSQL trace store (psycopg 3): for many writers at once."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    pass

from cowest_graph.store.base import StoreError, TraceStore, _Dialect


class PostgresTraceStore(TraceStore):
    """PostgreSQL via psycopg 3: for many writers (processes, machines) at once."""

    def __init__(self, url: str, *, create: bool = True) -> None:
        super().__init__(url)
        self._dialect = _Dialect(param="%s", real="DOUBLE PRECISION")
        try:
            import psycopg
        except ImportError as exc:  # pragma: no cover - psycopg is in the postgres/dev extras
            raise StoreError(
                "PostgreSQL trace stores need psycopg: pip install 'cowest-graph[postgres]'"
            ) from exc
        self._psycopg = psycopg
        try:
            self._conn = psycopg.connect(url, connect_timeout=10)
        except psycopg.Error as exc:
            detail = " ".join(str(exc).split())
            raise StoreError(f"cannot connect to PostgreSQL at {self.display_url}: {detail}") from exc
        with self._cursor_ctx(write=True) as cur:
            if not create:
                cur.execute("SELECT to_regclass('cowest_schema')")
                if cur.fetchone()[0] is None:
                    self._conn.close()
                    raise StoreError(
                        f"no trace store in {self.display_url}: check the URL (reading never creates a store)"
                    )
            cur.execute("SELECT pg_advisory_xact_lock(7242023)")  # one migrator at a time
            self._migrate(cur)

    @contextmanager
    def _cursor_ctx(self, write: bool) -> Iterator[Any]:
        """One transaction. A connection lost earlier (a server restart, a network cut) is opened
        again first; one lost during this transaction rolls it back and raises `StoreError`, and
        the next use reconnects (the tracer keeps the unwritten run and retries it)."""
        psycopg = self._psycopg
        with self._lock:
            if self._conn.closed or self._conn.broken:
                try:
                    self._conn = psycopg.connect(self.url, connect_timeout=10)
                except psycopg.Error as exc:
                    detail = " ".join(str(exc).split())
                    raise StoreError(
                        f"cannot reconnect to PostgreSQL at {self.display_url}: {detail}"
                    ) from exc
            try:
                with self._conn.transaction(), self._conn.cursor() as cur:
                    yield cur
            except psycopg.OperationalError as exc:
                if not (self._conn.closed or self._conn.broken):
                    raise
                detail = " ".join(str(exc).split())
                raise StoreError(
                    f"lost the connection to PostgreSQL at {self.display_url} ({detail}); "
                    "nothing of this transaction was written, the next use reconnects"
                ) from exc

    def close(self) -> None:
        with self._lock:
            self._conn.close()
