"""The quality benchmark's bookkeeping: one random stream per sample, summaries per report size."""

from __future__ import annotations

import pytest

from benchmarks.quality import Task, draw_samples, markdown, split_dev, summarise


def _task() -> Task:
    return Task("t", ("a", "b"), list(range(300)), list(range(1000, 1500)), "")


def test_training_samples_do_not_depend_on_report_size() -> None:
    task = _task()
    full = draw_samples(task, 0, n_report=0, n_sft=32, n_collect=16)
    part = draw_samples(task, 0, n_report=200, n_sft=32, n_collect=16)
    assert full.report == task.report  # n_report=0 means every report row, in order
    assert len(part.report) == 200 and set(part.report) <= set(task.report)
    assert part.sft == full.sft and part.collect == full.collect
    assert len(full.sft) == 32 and len(set(full.sft)) == 32 and set(full.sft) <= set(task.train)


def test_seeds_draw_different_training_samples_on_the_same_report_rows() -> None:
    task = _task()
    a, b = (
        draw_samples(task, 0, n_report=50, n_sft=32, n_collect=16),
        draw_samples(task, 1, n_report=50, n_sft=32, n_collect=16),
    )
    assert a.sft != b.sft and a.collect != b.collect
    assert a.report == b.report, "every seed is measured on the same report rows"
    assert draw_samples(task, 1, n_report=50, n_sft=32, n_collect=16) == b


def test_dev_slice_is_train_side_and_required_for_on_dev() -> None:
    task = split_dev(_task(), 40)
    assert task.dev is not None and len(task.dev) == 40 and not set(task.dev) & set(task.train)
    assert draw_samples(task, 0, n_report=10, n_sft=8, n_collect=8, on="dev").report[0] in task.dev
    crass = Task("crass", ("A", "B"), [], list(range(44)), "", trainable=False)
    with pytest.raises(SystemExit, match="no dev slice"):
        draw_samples(split_dev(crass, 40), 0, n_report=10, n_sft=0, n_collect=0, on="dev")


def _row(seed: int, n: int, accuracy: float) -> dict[str, object]:
    return {
        "task": "ethics",
        "seed": seed,
        "name": "strong alone",
        "n": n,
        "accuracy": accuracy,
        "ci_low": accuracy - 0.05,
        "ci_high": accuracy + 0.05,
        "macro_f1": 0.4,
        "unparseable_rate": 0.0,
        "strong_calls_per_q": 1.0,
        "strong_tokens_per_q": 170.0,
        "wall_s": 10.0,
    }


def test_summary_averages_seeds_only_over_equal_report_sizes() -> None:
    rows = [_row(0, 2109, 0.60), _row(1, 2109, 0.50), _row(2, 400, 0.90)]
    summary = summarise(rows)
    assert [(s["n"], s["seeds"]) for s in summary] == [(2109, 2), (400, 1)]
    assert summary[0]["accuracy"] == pytest.approx(0.55)
    assert (summary[0]["seed_min"], summary[0]["seed_max"]) == (0.50, 0.60)
    assert summary[1]["accuracy"] == pytest.approx(0.90)
    table = markdown(summary)
    assert "| ethics | strong alone | 2109 | 0.550 (0.500-0.600) |" in table
    assert "| ethics | strong alone | 400 | 0.900 (0.900-0.900) |" in table
