"""Trace records as a `datasets.Dataset`: one row per run, typed features."""

from __future__ import annotations

from typing import Any

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
    """The `datasets.Features` of an exported run."""
    import datasets

    candidate = {k: datasets.Value(v) for k, v in _CANDIDATE_KEYS.items()}
    return datasets.Features(
        {
            "run_id": datasets.Value("string"),
            "thread_id": datasets.Value("string"),
            "started_at": datasets.Value("float64"),
            "status": datasets.Value("string"),
            "question": datasets.Value("string"),
            "reference": datasets.Value("string"),
            "answer": datasets.Value("string"),
            "best_score": datasets.Value("float64"),
            "weak_model": datasets.Value("string"),
            "adapter_version": datasets.Value("string"),
            "strong_model": datasets.Value("string"),
            "alone_answer": datasets.Value("string"),
            "alone_score": datasets.Value("float64"),
            "candidates": datasets.List(candidate),
        }
    )


def dataset_row(record: dict[str, Any]) -> dict[str, Any]:
    """One trace record as a dataset row."""
    alone = record.get("alone") or {}
    return {
        "run_id": record.get("run_id"),
        "thread_id": record.get("thread_id"),
        "started_at": record.get("started_at"),
        "status": record.get("status"),
        "question": record.get("question"),
        "reference": record.get("reference"),
        "answer": record.get("answer"),
        "best_score": record.get("best_score"),
        "weak_model": record.get("weak_model"),
        "adapter_version": record.get("adapter_version"),
        "strong_model": record.get("strong_model"),
        "alone_answer": alone.get("answer"),
        "alone_score": alone.get("score"),
        "candidates": [{k: c.get(k) for k in _CANDIDATE_KEYS} for c in record.get("candidates") or []],
    }
