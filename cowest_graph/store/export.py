"""Trace records as a `datasets.Dataset`: one row per run, typed features."""

from __future__ import annotations

from typing import Any

from cowest_graph.store.schema import RUN_COLUMNS

_CANDIDATE_KEYS = {
    "id": "string",
    "round": "int64",
    "draft": "string",
    "answer": "string",
    "score": "float64",
    "influence": "float64",
    "error": "string",
}


def dataset_features() -> Any:
    """The `datasets.Features` of an exported run: every column of the store (`RUN_COLUMNS`),
    then the reference, the answer, the strong model's answer alone and the candidates."""
    import datasets

    candidate = {k: datasets.Value(v) for k, v in _CANDIDATE_KEYS.items()}
    return datasets.Features(
        {
            **{c.name: datasets.Value(c.feature) for c in RUN_COLUMNS},
            "reference": datasets.Value("string"),
            "answer": datasets.Value("string"),
            "alone_answer": datasets.Value("string"),
            "alone_score": datasets.Value("float64"),
            "candidates": datasets.List(candidate),
        }
    )


def dataset_row(record: dict[str, Any]) -> dict[str, Any]:
    """One trace record as a dataset row."""
    alone = record.get("alone") or {}
    return {
        **{c.name: record.get(c.name) for c in RUN_COLUMNS},
        "reference": record.get("reference"),
        "answer": record.get("answer"),
        "alone_answer": alone.get("answer"),
        "alone_score": alone.get("score"),
        "candidates": [{k: c.get(k) for k in _CANDIDATE_KEYS} for c in record.get("candidates") or []],
    }
