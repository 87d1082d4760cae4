"""Collaborative-feedback preference pairs."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from trace_records import traced_run as run

from cowest_graph.feedback import build_preference_pairs
from cowest_graph.store import RunFilter, open_trace_store


def test_delta_with_strong_alone() -> None:
    pairs = build_preference_pairs([run("q", [("good", 0.9), ("bad", 0.2)], alone=0.4)], eval_fraction=0)
    [row] = pairs["train"]
    assert row["chosen"] == [{"role": "assistant", "content": "good"}]
    assert row["rejected"] == [{"role": "assistant", "content": "bad"}]
    assert row["prompt"] == [{"role": "user", "content": "Question: q"}]
    assert row["delta_chosen"] == pytest.approx(0.5) and row["delta_rejected"] == pytest.approx(-0.2)
    assert row["margin"] == pytest.approx(0.7)
    assert pairs.report.used_strong_alone == 2 and pairs.report.mean_delta == pytest.approx(0.15)


def test_without_strong_alone_the_score_is_the_influence() -> None:
    pairs = build_preference_pairs([run("q", [("a", 0.3), ("b", 0.8)])], eval_fraction=0)
    [row] = pairs["train"]
    assert row["chosen"][0]["content"] == "b" and row["delta_chosen"] == pytest.approx(0.8)
    assert pairs.report.used_strong_alone == 0


def test_margin_ties_and_single_drafts_give_no_pair() -> None:
    records = [
        run("close", [("a", 0.50), ("b", 0.45)]),
        run("tied", [("a", 0.5), ("b", 0.5)]),
        run("single", [("a", 0.9)]),
        run("kept", [("a", 0.9), ("b", 0.1)]),
    ]
    pairs = build_preference_pairs(records, min_margin=0.1, eval_fraction=0)
    assert [r["question"] for r in pairs["train"]] == ["kept"]
    assert pairs.report.dropped == {
        "gap below min_margin": 1,
        "tie": 1,
        "prompt has a single distinct draft": 1,
    }


def test_duplicates_across_runs_are_removed() -> None:
    records = [
        run("q", [("same", 0.9), ("low", 0.1)], run_id="r1"),
        run("q", [("same", 0.7), ("low", 0.1)], run_id="r2"),
    ]
    pairs = build_preference_pairs(records, eval_fraction=0)
    assert pairs["train"].num_rows == 1
    assert pairs["train"][0]["delta_chosen"] == pytest.approx(0.8), "duplicates average their influence"
    assert pairs.report.dropped["duplicate draft text"] == 2


def test_basic_pairs_come_first() -> None:
    # Deltas: A=+0.30, B=+0.05, C=-0.05. Basic pairs (Delta>0 vs <=0): (A,C), (B,C); (A,B) is wider
    # than (B,C) but not basic.
    rec = run("q", [("A", 0.80), ("B", 0.55), ("C", 0.45)], alone=0.5)
    pairs = build_preference_pairs([rec], min_margin=0.05, max_pairs_per_prompt=2, eval_fraction=0)
    got = {(r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in pairs["train"]}
    assert got == {("A", "C"), ("B", "C")}
    assert pairs.report.dropped["over max_pairs_per_prompt"] == 1


def test_require_contrast_keeps_only_prompts_with_a_helping_and_a_non_helping_draft() -> None:
    records = [
        run("mixed", [("right", 1.0), ("wrong", 0.0), ("right too", 1.0)], alone=0.0),
        run("all helped", [("a", 1.0), ("b", 1.0)], alone=0.0),
        run("none helped", [("hurt", 0.0), ("kept", 1.0)], alone=1.0),  # Deltas -1 and 0: no help
    ]
    loose = build_preference_pairs(records, min_margin=0.5, eval_fraction=0)
    assert {r["question"] for r in loose["train"]} == {"mixed", "none helped"}
    strict = build_preference_pairs(records, min_margin=0.5, eval_fraction=0, require_contrast=True)
    assert {r["question"] for r in strict["train"]} == {"mixed"}
    assert {(r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in strict["train"]} == {
        ("right", "wrong"),
        ("right too", "wrong"),
    }
    assert strict.report.prompts == 3 and strict.report.prompts_with_pairs == 1
    assert strict.report.dropped["prompt without both a helping and a non-helping draft"] == 2


def test_failed_and_unscored_drafts_are_dropped() -> None:
    rec = run("q", [("a", 0.9), ("b", None), ("c", 0.1)])
    rec["candidates"][2]["error"] = "TimeoutError: slow"
    with pytest.raises(ValueError, match="no preference pairs") as err:
        build_preference_pairs([rec])
    assert "answer unscored: 1" in str(err.value) and "refinement failed: 1" in str(err.value)


def test_grouped_deterministic_split() -> None:
    records = [run(f"q{i}", [("x", 0.9), ("y", 0.1)], run_id=f"a{i}") for i in range(20)]
    records += [run(f"q{i}", [("x2", 0.8), ("y2", 0.0)], run_id=f"b{i}") for i in range(20)]
    first = build_preference_pairs(records, eval_fraction=0.25, seed=3)
    again = build_preference_pairs(records, eval_fraction=0.25, seed=3)
    other = build_preference_pairs(records, eval_fraction=0.25, seed=4)
    train_q, eval_q = set(first["train"]["question"]), set(first["eval"]["question"])
    assert not train_q & eval_q and len(eval_q) == 5 and len(train_q) == 15
    assert eval_q == set(again["eval"]["question"]) and eval_q != set(other["eval"]["question"])


def test_no_usable_pairs_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"no preference pairs: 1 runs, 1 drafts"):
        build_preference_pairs([run("q", [("a", 0.5)])])
    with pytest.raises(ValueError, match="min_margin"):
        build_preference_pairs([], min_margin=-1)


def test_from_a_store_with_a_filter(tmp_path) -> None:
    store = open_trace_store(f"sqlite:///{tmp_path}/t.db")
    for i in range(3):
        store.write_run(
            {
                **run(f"q{i}", [("x", 0.9), ("y", 0.1)]),
                "started_at": float(i),
                "status": "success",
                "adapter_version": "v0001" if i else None,
            }
        )
    pairs = build_preference_pairs(store, eval_fraction=0, flt=RunFilter(adapter_version="v0001"))
    assert sorted(pairs["train"]["question"]) == ["q1", "q2"]


def test_a_store_read_in_two_passes_gives_the_pairs_of_its_records(tmp_path) -> None:
    # The store path reads the runs twice (hashes first, the paired texts second); a list is the
    # same records held in memory. Both must give the same rows, in the same order, every time.
    records = []
    for i in range(240):
        q = f"q{i % 37}"
        drafts = [(f"draft {(i * 7 + j) % 5} of {q}", ((i + j) % 4) / 3) for j in range(4)]
        records.append({**run(q, drafts, alone=(i % 3) / 2, run_id=f"run-{i:04d}"), "started_at": 1e9 + i})
    store = open_trace_store(f"sqlite:///{tmp_path}/t.db")
    for rec in records:
        store.write_run({**rec, "status": "success"})
    from_store = build_preference_pairs(store, eval_fraction=0.2, seed=3)
    again = build_preference_pairs(f"sqlite:///{tmp_path}/t.db", eval_fraction=0.2, seed=3)
    from_list = build_preference_pairs(iter(records), eval_fraction=0.2, seed=3)
    assert from_store.report.pairs > 50 and from_store["eval"].num_rows > 0
    for split in ("train", "eval"):
        assert from_store[split].to_list() == from_list[split].to_list() == again[split].to_list()
    assert from_store.report.as_dict() == from_list.report.as_dict()


def test_pairs_from_a_store_never_hold_every_draft_text(tmp_path) -> None:
    # 1,000 runs of 4 drafts of 8,000 characters: 32 MB of draft text. Building pairs keeps hashes
    # in memory and the paired texts in a temporary file, so Python's peak stays far below that.
    import tracemalloc

    store = open_trace_store(f"sqlite:///{tmp_path}/big.db")
    for i in range(1000):
        q = f"q{i // 2}"
        drafts = [(f"{j}{i}".ljust(8000, "xyz"[j % 3]), float(j % 2)) for j in range(4)]
        store.write_run({**run(q, drafts, alone=0.0, run_id=f"r{i:05d}"), "started_at": 1e9 + i})
    tracemalloc.start()
    try:
        pairs = build_preference_pairs(store, eval_fraction=0.1)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert pairs.report.pairs == 500 * 4
    assert len(pairs["train"][0]["chosen"][0]["content"]) == 8000
    assert peak < 12_000_000, f"peak {peak / 1e6:.1f} MB of Python objects for 32 MB of drafts"


texts = st.sampled_from(["alpha", "beta", "gamma", "delta", "alpha "])
scores = st.one_of(st.none(), st.floats(0, 1, allow_nan=False))


@settings(max_examples=150, deadline=None)
@given(
    records=st.lists(
        st.tuples(
            st.sampled_from(["q1", "q2", "q3", "q4"]),
            st.lists(st.tuples(texts, scores), min_size=1, max_size=5),
            st.one_of(st.none(), st.floats(0, 1, allow_nan=False)),
        ),
        min_size=1,
        max_size=8,
    ),
    min_margin=st.floats(0, 0.5),
    max_pairs=st.integers(1, 4),
)
def test_pair_invariants(records, min_margin: float, max_pairs: int) -> None:
    recs = [run(q, drafts, alone=alone, run_id=f"r{i}") for i, (q, drafts, alone) in enumerate(records)]
    # One run that must give a pair (margin 1.0 >= any min_margin drawn), so the invariants below
    # are checked on every example, never skipped for want of pairs.
    recs.append(run("q0", [("sure good", 1.0), ("sure bad", 0.0)], run_id="r-sure"))
    pairs = build_preference_pairs(
        recs, min_margin=min_margin, max_pairs_per_prompt=max_pairs, eval_fraction=0.5, seed=1
    )
    rows = list(pairs["train"]) + list(pairs["eval"])
    assert rows and pairs.report.pairs == len(rows)
    assert any(r["chosen"][0]["content"] == "sure good" for r in rows)
    assert not set(pairs["train"]["question"]) & set(pairs["eval"]["question"])
    per_prompt: dict[str, int] = {}
    for r in rows:
        assert r["margin"] >= min_margin and r["margin"] > 0
        assert r["chosen"][0]["content"].strip() != r["rejected"][0]["content"].strip()
        assert r["delta_chosen"] - r["delta_rejected"] == pytest.approx(r["margin"])
        per_prompt[r["prompt_text"]] = per_prompt.get(r["prompt_text"], 0) + 1
    assert max(per_prompt.values()) <= max_pairs
    assert len(
        {(r["prompt_text"], r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in rows}
    ) == len(rows)
