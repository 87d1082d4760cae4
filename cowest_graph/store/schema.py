"""The trace store's columns, in one spec, and everything made from it: the migrations' SQL,
the summary of `list_runs`, the values a written run fills in, the exported dataset's features.

A run is one row of `cowest_runs`: the columns below (filterable, indexed) and `data`, the whole
record as JSON. Each node execution is a row of `cowest_nodes`. Adding a column means adding a
`Column` here with the next `since` version (its migration is generated) and bumping
`SCHEMA_VERSION`; a column that `list_runs` shows is also a field of `RunSummary`.

Example:
    >>> [c.name for c in RUN_COLUMNS if c.since > 1]
    ['example_id']
    >>> MIGRATIONS[2][0]
    'ALTER TABLE cowest_runs ADD COLUMN example_id TEXT'
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

SCHEMA_VERSION = 3
"""The schema version this release writes."""


def column_text(value: Any) -> Any:
    """A text column's value: PostgreSQL text holds no NUL character (the JSON record keeps it)."""
    return value.replace("\x00", "\ufffd") if isinstance(value, str) else value


@dataclass(frozen=True)
class Column:
    """One column of `cowest_runs`: its SQL type (`{real}`: the dialect's float), the dataset
    feature type of an exported run, the schema version that added it, and how a record fills it."""

    name: str
    sql: str
    feature: str
    since: int = 1
    value: Callable[[Mapping[str, Any]], Any] | None = None

    def of(self, record: Mapping[str, Any]) -> Any:
        """This column's value for a trace record."""
        if self.value is not None:
            return self.value(record)
        raw = record.get(self.name)
        return column_text(raw) if self.sql.startswith("TEXT") else raw


RUN_COLUMNS: tuple[Column, ...] = (
    Column("run_id", "TEXT PRIMARY KEY", "string"),
    Column("thread_id", "TEXT", "string"),
    Column("parent_run_id", "TEXT", "string"),
    Column(
        "started_at",
        "{real} NOT NULL",
        "float64",
        value=lambda r: float(time.time() if r.get("started_at") is None else r["started_at"]),
    ),
    Column("ended_at", "{real}", "float64"),
    Column("status", "TEXT NOT NULL", "string", value=lambda r: r.get("status") or "unknown"),
    Column("question", "TEXT", "string"),
    Column("weak_model", "TEXT", "string"),
    Column("adapter_version", "TEXT", "string"),
    Column("strong_model", "TEXT", "string"),
    Column("best_score", "{real}", "float64"),
    # v2: the id of the dataset example a run answered, so a collection pass can resume.
    Column("example_id", "TEXT", "string", since=2),
)
"""The columns of `cowest_runs` besides `data` (the record as JSON), in table order."""

_NODES_TABLE = """CREATE TABLE IF NOT EXISTS cowest_nodes (
            run_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            node TEXT NOT NULL,
            round INTEGER,
            started_at {real},
            latency_s {real},
            error TEXT,
            data TEXT NOT NULL,
            PRIMARY KEY (run_id, seq)
        )"""

_INDEXES: dict[int, list[str]] = {
    1: [
        "CREATE INDEX IF NOT EXISTS cowest_runs_started ON cowest_runs (started_at)",
        "CREATE INDEX IF NOT EXISTS cowest_runs_thread ON cowest_runs (thread_id)",
        "CREATE INDEX IF NOT EXISTS cowest_runs_adapter ON cowest_runs (adapter_version)",
    ],
    2: ["CREATE INDEX IF NOT EXISTS cowest_runs_example ON cowest_runs (example_id)"],
    # v3: reading pages by the key (started_at, run_id), never by OFFSET (linear, and stable while
    # other processes write).
    3: ["CREATE INDEX IF NOT EXISTS cowest_runs_order ON cowest_runs (started_at, run_id)"],
}


def _migrations() -> dict[int, list[str]]:
    first = [f"{c.name} {c.sql}" for c in RUN_COLUMNS if c.since == 1] + ["data TEXT NOT NULL"]
    runs_table = "CREATE TABLE IF NOT EXISTS cowest_runs (\n    " + ",\n    ".join(first) + "\n)"
    out = {1: [runs_table, _NODES_TABLE, *_INDEXES[1]]}
    for version in range(2, SCHEMA_VERSION + 1):
        added = [
            f"ALTER TABLE cowest_runs ADD COLUMN {c.name} {c.sql}" for c in RUN_COLUMNS if c.since == version
        ]
        out[version] = [*added, *_INDEXES.get(version, [])]
    return out


MIGRATIONS: dict[int, list[str]] = _migrations()
"""Each migration takes a store from version N-1 to N (`{real}`: the dialect's float type)."""


@dataclass
class RunSummary:
    """One line of `list_runs`: a subset of `RUN_COLUMNS`, in their order."""

    run_id: str
    thread_id: str | None
    started_at: float
    ended_at: float | None
    status: str
    question: str | None
    weak_model: str | None
    adapter_version: str | None
    strong_model: str | None
    best_score: float | None


SUMMARY_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(RunSummary))
_unknown = set(SUMMARY_COLUMNS) - {c.name for c in RUN_COLUMNS}
if _unknown:  # a summary field must be a column: caught by importing the package at all
    raise RuntimeError(f"RunSummary fields that are not columns of cowest_runs: {sorted(_unknown)}")


def upsert_sql(param: str) -> str:
    """`INSERT ... ON CONFLICT (run_id) DO UPDATE` of a whole run row (columns, then `data`)."""
    cols = [c.name for c in RUN_COLUMNS] + ["data"]
    updates = ", ".join(f"{c} = excluded.{c}" for c in cols[1:])
    return (
        f"INSERT INTO cowest_runs ({', '.join(cols)}) VALUES ({', '.join([param] * len(cols))}) "
        f"ON CONFLICT (run_id) DO UPDATE SET {updates}"
    )


def row_values(record: Mapping[str, Any], data: str) -> tuple[Any, ...]:
    """The values of `upsert_sql`'s row for one record (already JSON-encoded as `data`)."""
    return (*(c.of(record) for c in RUN_COLUMNS), data)
