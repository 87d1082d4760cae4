"""The quality benchmark's samples: one random stream per purpose, so training data is stable."""

from __future__ import annotations

import pytest

from benchmarks.quality import Task, draw_samples, split_dev


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


def test_seeds_draw_different_samples_and_repeat_exactly() -> None:
    task = _task()
    a, b = (
        draw_samples(task, 0, n_report=50, n_sft=32, n_collect=16),
        draw_samples(task, 1, n_report=50, n_sft=32, n_collect=16),
    )
    assert a.sft != b.sft and a.report != b.report
    assert draw_samples(task, 1, n_report=50, n_sft=32, n_collect=16) == b


def test_dev_slice_is_train_side_and_required_for_on_dev() -> None:
    task = split_dev(_task(), 40)
    assert task.dev is not None and len(task.dev) == 40 and not set(task.dev) & set(task.train)
    assert draw_samples(task, 0, n_report=10, n_sft=8, n_collect=8, on="dev").report[0] in task.dev
    crass = Task("crass", ("A", "B"), [], list(range(44)), "", trainable=False)
    with pytest.raises(SystemExit, match="no dev slice"):
        draw_samples(split_dev(crass, 40), 0, n_report=10, n_sft=0, n_collect=0, on="dev")
