"""The trace store: SQLite (default, embedded) or PostgreSQL (many writers), one schema.

A run is written once, when it finishes, in one transaction: a row in `cowest_runs` (filterable
columns + the whole record as JSON) and one row per node execution in `cowest_nodes`. The schema
is versioned in `cowest_schema`; opening a store applies missing migrations and refuses a store
written by a newer version.

- `schema.py`: the columns (one spec), the migrations made from it, `RunSummary`;
- `base.py`: `RunFilter`, errors, the `TraceStore` contract;
- `sqlite.py`, `postgresql.py`: the backends; a new one subclasses `TraceStore` and joins `SCHEMES`;
- `export.py`: runs as a `datasets.Dataset`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

from cowest_graph.store.base import CorruptRecordError, RunFilter, StoreError, TraceStore
from cowest_graph.store.postgresql import PostgresTraceStore
from cowest_graph.store.schema import MIGRATIONS, RUN_COLUMNS, SCHEMA_VERSION, Column, RunSummary
from cowest_graph.store.sqlite import SQLiteTraceStore


def _sqlite(url: str, rest: str, create: bool) -> TraceStore:
    if not rest.startswith("/"):
        raise StoreError(f"trace store URL {url!r}: write sqlite:///PATH (three slashes)")
    return SQLiteTraceStore(url, Path(rest[1:]), create=create)


def _postgres(url: str, rest: str, create: bool) -> TraceStore:
    return PostgresTraceStore(url, create=create)


SCHEMES: dict[str, Callable[[str, str, bool], TraceStore]] = {
    "sqlite": _sqlite,
    "postgresql": _postgres,
    "postgres": _postgres,
}
"""URL scheme -> `opener(url, rest_after_scheme, create)`: register a new backend here."""


def open_trace_store(url: str | Path, *, create: bool = True) -> TraceStore:
    """Open (creating and migrating if needed) a trace store.

    `sqlite:///relative/path.db`, `sqlite:////absolute/path.db`, a plain path ending in `.db`,
    or `postgresql://user:pass@host:port/db`. With `create=False` (what reading does) a store
    that does not exist yet is a `StoreError`, never an empty new one.

    Example:
        >>> store = open_trace_store("sqlite:///traces.db")  # doctest: +SKIP
        >>> store.schema_version() == SCHEMA_VERSION  # doctest: +SKIP
        True
    """
    url = str(url)
    if "://" not in url:
        if url.endswith((".db", ".sqlite", ".sqlite3")):
            return SQLiteTraceStore(f"sqlite:///{url}", Path(url), create=create)
        raise StoreError(f"trace store URL {url!r} has no scheme: use sqlite:///PATH or postgresql://...")
    scheme, rest = url.split("://", 1)
    opener = SCHEMES.get(scheme)
    if opener is None:
        raise StoreError(
            f"unknown trace store scheme {scheme!r} in {re.sub(r':[^:@/]*@', ':***@', url)}: "
            "use sqlite:///PATH or postgresql://..."
        )
    return opener(url, rest, create)


def known_schemes() -> Sequence[str]:
    """The URL schemes `open_trace_store` understands."""
    return tuple(SCHEMES)


__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "SCHEMES",
    "CorruptRecordError",
    "PostgresTraceStore",
    "RunFilter",
    "RUN_COLUMNS",
    "Column",
    "RunSummary",
    "SQLiteTraceStore",
    "StoreError",
    "TraceStore",
    "known_schemes",
    "open_trace_store",
]
