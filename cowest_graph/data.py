"""Question datasets: JSONL or CSV files of questions with optional references."""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

QUESTION_KEYS = ("question", "input", "prompt")
REFERENCE_KEYS = ("reference", "answer", "label")


@dataclass(frozen=True)
class Example:
    """One question to run, with its optional reference answer and a stable id."""

    id: str
    question: str
    reference: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def _pick(row: dict[str, Any], keys: tuple[str, ...]) -> Any:
    return next((row[k] for k in keys if k in row and row[k] not in (None, "")), None)


def load_questions(path: str | Path) -> list[Example]:
    """Read questions from a `.jsonl` or `.csv` file.

    Columns: `question` (or `input`/`prompt`), optional `reference` (or `answer`/`label`), optional
    `id` (default: a hash of the question). Raises `ValueError` naming the file and line of a bad
    row, and for duplicate ids.

    Example:
        >>> [e.question for e in load_questions("examples/data/quillfeather/test_questions.jsonl")][:1]
        ['It is Sunday. In how many days is the next Quillfeather expense report deadline?']
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"question file not found: {path}")
    rows: list[tuple[int, dict[str, Any]]] = []
    if path.suffix == ".csv":
        csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))  # long questions are fine
        with path.open(newline="", encoding="utf-8-sig") as handle:  # a BOM is not part of a header
            rows = [(i + 2, dict(r)) for i, r in enumerate(csv.DictReader(handle))]
    elif path.suffix in (".jsonl", ".json"):
        for i, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{i}: not valid JSON ({exc.msg})") from exc
            if not isinstance(row, dict):
                raise ValueError(f"{path}:{i}: expected a JSON object")
            rows.append((i, row))
    else:
        raise ValueError(f"{path}: expected a .jsonl or .csv file")
    examples: list[Example] = []
    seen: set[str] = set()
    for row_number, row in rows:
        question = _pick(row, QUESTION_KEYS)
        if not isinstance(question, str) or not question.strip():
            raise ValueError(
                f"{path}:{row_number}: no question (expected a column named one of {QUESTION_KEYS})"
            )
        reference = _pick(row, REFERENCE_KEYS)
        ex_id = str(row.get("id") or hashlib.sha256(question.encode()).hexdigest()[:12])
        if ex_id in seen:
            raise ValueError(f"{path}:{row_number}: duplicate id {ex_id!r}")
        seen.add(ex_id)
        meta = {k: v for k, v in row.items() if k not in (*QUESTION_KEYS, *REFERENCE_KEYS, "id")}
        examples.append(Example(ex_id, question.strip(), None if reference is None else str(reference), meta))
    if not examples:
        raise ValueError(f"{path}: no questions")
    return examples
