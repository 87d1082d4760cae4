"""The quality benchmark's bookkeeping: one random stream per sample, summaries per report size."""

from __future__ import annotations

import sqlite3
from pathlib import Path

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
    # One collection sample per DPO round, each its own draw from the train side; asking for more
    # rounds leaves the earlier rounds' questions as they were.
    assert len(full.collect) == 2 and full.collect[0] != full.collect[1]
    assert all(len(c) == 16 and set(c) <= set(task.train) for c in full.collect)
    three = draw_samples(task, 0, n_report=0, n_sft=32, n_collect=16, rounds=3)
    assert three.collect[:2] == full.collect and len(three.collect) == 3


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
    # Seeds without per-question outcomes are not pooled: each seed's own interval is shown.
    assert summary[0]["ci_low"] is None
    assert [round(x, 3) for ci in summary[0]["seed_cis"] for x in ci] == [0.55, 0.65, 0.45, 0.55]
    assert "per seed [0.550, 0.650] / [0.450, 0.550]" in table
    assert summary[1]["ci_low"] == pytest.approx(0.85)


def test_pooled_seeds_take_a_two_level_bootstrap_and_a_missing_f1_is_not_zero() -> None:
    a = {**_row(0, 100, 0.52), "outcomes": "1" * 52 + "0" * 48}
    b = {**_row(1, 100, 0.65), "outcomes": "1" * 65 + "0" * 35, "macro_f1": None}
    [pooled] = summarise([a, b])
    # Both seeds lie inside the pooled interval (the mean of their own bounds, [0.535, 0.635], did not).
    assert pooled["ci_low"] < 0.52 and pooled["ci_high"] > 0.65
    assert pooled["ci"] == "bootstrap over seeds and questions"
    assert pooled["macro_f1"] is None and "| - |" in markdown([pooled])


def test_draft_influence_cells_partition_the_questions() -> None:
    from benchmarks.quality import draft_influence
    from cowest_graph.evaluate import ConditionResult

    def result(name: str, correct: list[int]) -> ConditionResult:
        return ConditionResult(name, len(correct), 0, 0, 0, None, 0, 0, 0, 0, correct=correct)

    weak, alone = result("w", [1, 1, 0, 0, 1]), result("s", [1, 0, 1, 0, 0])
    cells = draft_influence(weak, alone, result("c", [1, 1, 0, 0, 0]))
    assert cells["draft right, alone wrong"] == {"n": 2, "cowest_right": 1}
    assert cells["draft wrong, alone right"] == {"n": 1, "cowest_right": 0}
    assert sum(c["n"] for c in cells.values()) == 5


def test_pair_labels_count_the_label_each_side_names() -> None:
    from benchmarks.quality import pair_labels

    def said(text: str) -> list[dict[str, str]]:
        return [{"role": "assistant", "content": text}]

    rows = [
        {"chosen": said("Answer: a"), "rejected": said("Answer: b")},
        {"chosen": said("Answer: a"), "rejected": said("I cannot tell.")},
        {"chosen": said("b"), "rejected": said("Answer: a")},
    ]
    assert pair_labels(rows, ("a", "b")) == {
        "chosen": {"a": 2, "b": 1, "none": 0},
        "rejected": {"a": 1, "b": 1, "none": 1},
    }
    assert pair_labels([], ("a", "b"))["chosen"] == {"a": 0, "b": 0, "none": 0}


def test_balanced_pairs_name_each_chosen_label_equally_often_and_count_what_went() -> None:
    import datasets
    import pytest

    from benchmarks.quality import balance_chosen_labels, pair_labels
    from cowest_graph.influence import PairReport
    from cowest_graph.pair_dataset import PreferencePairs

    def pairs_of(chosen: list[str]) -> PreferencePairs:
        rows = [
            {
                "chosen": [{"role": "assistant", "content": c}],
                "rejected": [{"role": "assistant", "content": "x"}],
                "question": f"q{i}",
            }
            for i, c in enumerate(chosen)
        ]
        got = PreferencePairs(
            {"train": datasets.Dataset.from_list(rows), "eval": datasets.Dataset.from_list(rows[:1])}
        )
        got.report = PairReport(pairs=len(rows) + 1, train_pairs=len(rows), eval_pairs=1)
        return got

    pairs = pairs_of(["Answer: a"] * 5 + ["Answer: b"] * 2 + ["Answer: c"] * 3 + ["no idea"])
    cut = balance_chosen_labels(pairs, ("a", "b", "c"), seed=3)
    assert pair_labels(cut["train"], ("a", "b", "c"))["chosen"] == {"a": 2, "b": 2, "c": 2, "none": 0}
    assert (cut.report.train_pairs, cut.report.eval_pairs, cut.report.pairs) == (6, 1, 7)
    assert cut.report.dropped == {
        "balance: chosen draft names no label": 1,
        "balance: beyond the least-chosen label's count": 4,
    }
    assert cut["eval"].num_rows == 1 and pairs.report.train_pairs == 11  # the original is untouched
    again = balance_chosen_labels(pairs, ("a", "b", "c"), seed=3)
    assert again["train"]["question"] == cut["train"]["question"]  # the seed fixes the draw
    others = {
        tuple(balance_chosen_labels(pairs, ("a", "b", "c"), seed=s)["train"]["question"]) for s in range(8)
    }
    assert len(others) > 1  # ... and another seed draws other pairs of the larger labels
    with pytest.raises(ValueError, match=r"\['a'\] only"):
        balance_chosen_labels(pairs_of(["Answer: a"] * 3 + ["none"]), ("a", "b"), seed=0)


def test_prompts_share_the_few_shot_prefix_and_the_grammar_admits_only_labels() -> None:
    from benchmarks.quality import label_grammar, task_prompts

    task = Task("t", ("yes", "no"), [], [], "End with 'Answer: yes' or 'Answer: no'.")
    from cowest_graph.data import Example

    task.train = [Example(str(i), f"q{i}", "yes" if i % 2 else "no") for i in range(10)]
    prompts = task_prompts(task, 2, seed=0)
    first = prompts.strong_messages("q-a", "draft a")[0].content
    assert (
        first
        == prompts.strong_messages("q-b", "draft b")[0].content
        == prompts.alone_messages("x")[0].content
    )
    assert "Answer: yes" in first or "Answer: no" in first  # the shots live in the shared prefix
    assert task_prompts(task, 2, seed=1).strong_system != prompts.strong_system
    assert label_grammar(("yes", "no")) == 'root ::= "Answer: " ("yes" | "no")'


def test_draft_content_separates_label_from_wording() -> None:
    from benchmarks.draft_content import draft_content

    def run(drafts: list[str], answers: list[str], scores: list[float]) -> dict[str, object]:
        return {
            "reference": "yes",
            "alone": {"answer": "Answer: no", "score": 0.0},
            "drafts": [{"id": str(i), "text": t} for i, t in enumerate(drafts)],
            "candidates": [
                {"id": str(i), "answer": a, "score": s}
                for i, (a, s) in enumerate(zip(answers, scores, strict=True))
            ],
        }

    same_label = run(["Answer: yes", "I think: yes"], ["Answer: yes", "Answer: no"], [1.0, 0.0])
    counts = draft_content([same_label], ("yes", "no"))
    assert counts["scored_apart_pairs"] == 1 and counts.get("apart_pairs_differ_in_label", 0) == 0
    assert counts["strong_repeats_draft_label"] == 1 and counts["right_draft_alone_wrong_rescued"] == 1


def test_rationale_target_teaches_the_weak_model_reasoning_and_leaves_the_strong_prompt_alone() -> None:
    from benchmarks.quality import sft_answer, task_prompts
    from cowest_graph.data import Example

    task = Task("t", ("yes", "no"), [], [], "End with 'Answer: yes' or 'Answer: no'.")
    task.train = [
        Example(str(i), f"q{i}", "yes" if i % 2 else "no", meta={"rationale": f"finding {i}."})
        for i in range(10)
    ]
    labels_only, rationales = (
        task_prompts(task, 2, seed=0),
        task_prompts(task, 2, seed=0, weak_target="rationale"),
    )
    assert rationales.strong_system == labels_only.strong_system, "strong alone must not change"
    assert "finding" in rationales.weak_system and "finding" not in labels_only.weak_system
    assert "finding" not in rationales.strong_system
    assert sft_answer(task.train[3], "rationale") == "finding 3.\nAnswer: yes"
    with pytest.raises(ValueError, match="'x' has no rationale"):
        sft_answer(Example("x", "q", "yes"), "rationale")
    with pytest.raises(ValueError, match="unknown SFT target 'cot'"):
        sft_answer(task.train[0], "cot")


def _traced_round(path: Path, drafts_per_question: dict[str, list[tuple[str, float]]]) -> None:
    """A round's trace store (real SQLite) as a collection writes it: per question, drafts and the
    score of the strong model's answer built on each."""
    from trace_records import traced_run

    from cowest_graph.store import open_trace_store

    store = open_trace_store(f"sqlite:///{path}")
    for i, (question, drafts) in enumerate(drafts_per_question.items()):
        store.write_run(
            {**traced_run(question, drafts, alone=0.5), "started_at": float(i), "status": "success"}
        )


def test_a_kept_round_reads_its_pairs_again_only_when_they_are_the_pairs_it_trained_on(tmp_path) -> None:
    from benchmarks.quality import pair_readings

    traces = tmp_path / "traces-round1.db"
    _traced_round(
        traces,
        {
            "q1": [("Answer: a", 1.0), ("Answer: b", 0.0)],
            "q2": [("Answer: b", 1.0), ("Answer: a", 0.0), ("Answer: a", 0.0)],  # a duplicate
            "q3": [("Answer: a", 1.0), ("Answer: b", 1.0)],  # a tie
        },
    )
    got = pair_readings(traces, pairs=2, min_margin=0.0, labels=("a", "b"))
    assert got["pair_report"]["pairs"] == 2 and got["pair_report"]["prompts"] == 3
    assert got["pair_report"]["dropped"]["duplicate draft text"] == 1
    assert got["pair_labels"] == {
        "chosen": {"a": 1, "b": 1, "none": 0},
        "rejected": {"a": 1, "b": 1, "none": 0},
    }
    assert pair_readings(traces, pairs=3, min_margin=0.0, labels=("a", "b")) == {}  # not its pairs
    assert pair_readings(tmp_path / "gone.db", pairs=2, min_margin=0.0, labels=("a", "b")) == {}
    _traced_round(tmp_path / "ties.db", {"q1": [("Answer: a", 1.0), ("Answer: b", 1.0)]})
    assert pair_readings(tmp_path / "ties.db", pairs=0, min_margin=0.0, labels=("a", "b")) == {}


def _tiny_task(*, trainable: bool) -> Task:
    from cowest_graph.data import Example

    rows = [Example(f"q{i}", f"Scenario: I did thing {i}.", "ab"[i % 2]) for i in range(8)]
    return Task("t", ("a", "b"), rows[:4], rows[4:], "Answer with a or b.", trainable=trainable)


def test_a_task_run_hands_over_each_condition_as_it_finishes(tmp_path, monkeypatch) -> None:
    """A (task, seed) run can take hours: each finished condition is passed on (and written) at once,
    marked partial, so a cut run keeps it. Real weak model (SmolLM2), scripted strong model."""
    import asyncio
    import json

    import benchmarks.common as common
    import benchmarks.quality as quality
    from cowest_graph.testing import ScriptedChatModel

    task = _tiny_task(trainable=False)
    args = quality.parse_args(["--strong", "standin", "--shots", "1", "--weak-tokens", "4"])
    strong = ScriptedChatModel(respond=lambda m: "Answer: a")
    seen: list[tuple[list[str], dict]] = []

    def on_condition(got: list, extra: dict) -> None:
        seen.append(([r["name"] for r in got], extra))

    got, extra = asyncio.run(quality.run_task(task, args, 0, tmp_path, strong, on_condition))
    assert [r["name"] for r in got] == ["strong alone", "weak alone", "CoWest"]
    assert [names for names, _ in seen] == [
        ["strong alone"],
        ["strong alone", "weak alone"],
        ["strong alone", "weak alone", "CoWest"],
        ["strong alone", "weak alone", "CoWest"],  # again once the draft influence is known
    ]
    assert all(e["partial"] for _, e in seen) and "partial" not in extra
    assert "draft_influence" not in seen[2][1] and seen[3][1]["draft_influence"] == extra["draft_influence"]
    assert [(p["first"], p["second"]) for p in seen[3][1]["paired"]] == [
        ("strong alone", "CoWest"),
        ("weak alone", "CoWest"),
    ]
    assert seen[3][1]["paired"] == extra["paired"]
    assert got[0]["accuracy"] == 0.5  # "a" is right on q4 and q6 only

    monkeypatch.setattr(quality, "RESULTS", tmp_path)
    monkeypatch.setattr(common, "RESULTS", tmp_path)
    quality.write_results(got[:1], [{"task": "t", "seed": 0, "partial": True}], [], args, 0.0, quiet=True)
    saved = json.loads((tmp_path / f"{args.name}.json").read_text())
    assert [r["condition"] for r in saved["summary"]] == ["strong alone"]
    assert saved["run_extras"][0]["partial"] is True


def test_a_reused_sft_adapter_that_is_not_there_is_named(tmp_path) -> None:
    import asyncio

    import benchmarks.quality as quality
    from cowest_graph.testing import ScriptedChatModel

    task = _tiny_task(trainable=True)
    missing = tmp_path / "no-adapter"
    settings = "--strong standin --shots 1 --n-sft 2 --tasks ethics --seeds 1".split()
    args = quality.parse_args([*settings, "--sft-adapter", str(missing)])
    strong = ScriptedChatModel(respond=lambda m: "Answer: a")
    with pytest.raises(SystemExit, match=f"--sft-adapter {missing}: no adapter there"):
        asyncio.run(quality.run_task(task, args, 0, tmp_path, strong))
    for several in (["--seeds", "2"], ["--tasks", "ethics,pubmedqa", "--seeds", "1"]):
        with pytest.raises(SystemExit):  # one adapter cannot stand for several (task, seed) runs
            quality.parse_args(["--sft-adapter", str(missing), *several])
    assert (
        quality.parse_args(["--sft-adapter", "x", "--tasks", "crass,ethics", "--seeds", "1"]).sft_adapter
        == "x"
    )


def test_a_cut_run_goes_on_where_it_stopped(tmp_path) -> None:
    """Each finished condition is kept in the run's work folder: the same run again measures only
    what the cut one had not finished, and gives the same figures. Real weak model (SmolLM2)."""
    import asyncio

    import benchmarks.quality as quality
    from cowest_graph.testing import ScriptedChatModel

    task = _tiny_task(trainable=False)
    settings = ["--strong", "standin", "--shots", "1", "--weak-tokens", "4"]
    args = quality.parse_args(settings)
    first = ScriptedChatModel(respond=lambda m: "Answer: a")
    got, extra = asyncio.run(quality.run_task(task, args, 0, tmp_path, first))
    assert len(first.calls) == 2 * len(task.report)  # strong alone, then CoWest (one draft each)

    kept = tmp_path / "t-s0" / "conditions"
    assert sorted(p.name for p in kept.iterdir()) == [
        "CoWest.db",  # its questions' traces, written as they are answered
        "CoWest.json",
        "strong-alone.json",
        "weak-alone.json",
    ]
    # As if the run was cut while CoWest was being measured, after its first two questions.
    (kept / "CoWest.json").unlink()
    with sqlite3.connect(kept / "CoWest.db") as db:
        db.execute("DELETE FROM cowest_runs WHERE example_id IN ('q6', 'q7')")
    again = ScriptedChatModel(respond=lambda m: "Answer: a")
    got_again, extra_again = asyncio.run(quality.run_task(task, args, 0, tmp_path, again))
    assert len(again.calls) == 2  # only CoWest's two unanswered questions were asked
    strip = [{k: v for k, v in r.items() if k != "wall_s"} for r in got]
    assert [{k: v for k, v in r.items() if k != "wall_s"} for r in got_again] == strip
    assert got_again[0]["wall_s"] == got[0]["wall_s"]  # strong alone: the first run's measurement
    assert extra_again["paired"] == extra["paired"]

    nothing_left = ScriptedChatModel(respond=lambda m: "Answer: a")
    asyncio.run(quality.run_task(task, args, 0, tmp_path, nothing_left))
    assert nothing_left.calls == []
    with pytest.raises(SystemExit, match=r"other settings \(weak_tokens: 4 there, 5 now\)"):
        other = quality.parse_args([*settings[:-1], "5"])
        asyncio.run(quality.run_task(task, other, 0, tmp_path, nothing_left))
    (kept / "strong-alone.json").write_text('{"name": "strong al')  # killed while writing by hand
    with pytest.raises(SystemExit, match="strong-alone.json is not valid JSON.*delete it"):
        asyncio.run(quality.run_task(task, args, 0, tmp_path, nothing_left))


def test_a_cut_trained_run_keeps_its_sft_adapter_and_rounds(tmp_path, monkeypatch) -> None:
    """The SFT step and a finished DPO round are not done again: real SFT (SmolLM2 + LoRA) once,
    then a run with a round whose adapter is kept evaluates it without collecting or training."""
    import asyncio
    import json

    import benchmarks.quality as quality
    import cowest_graph.collect
    import cowest_graph.train
    from benchmarks.resume import RunFolder
    from cowest_graph.testing import ScriptedChatModel

    task = _tiny_task(trainable=True)
    settings = "--strong standin --shots 1 --weak-tokens 4 --n-sft 2 --rounds 0".split()
    strong = ScriptedChatModel(respond=lambda m: "Answer: b")
    got, extra = asyncio.run(quality.run_task(task, quality.parse_args(settings), 0, tmp_path, strong))
    assert extra["sft"]["rows"] == 2 and extra["sft"]["wall_s"] > 0
    folder = tmp_path / "t-s0"
    step = json.loads((folder / "steps" / "sft.json").read_text())
    assert not Path(step["adapter"]).is_absolute()  # the folder can move
    assert (folder / step["adapter"] / "adapter_config.json").exists()

    def must_not_run(*a, **k):
        raise AssertionError("a kept step was done again")

    monkeypatch.setattr(cowest_graph.train, "train_sft", must_not_run)
    monkeypatch.setattr(cowest_graph.train, "train_dpo", must_not_run)
    monkeypatch.setattr(cowest_graph.collect, "acollect", must_not_run)
    # As if round 1 had collected and trained (its adapter: the SFT one here) before the run was cut.
    record = {"round": 1, "questions": 3, "pairs": 2, "collect_s": 1.0, "dpo_s": 1.0}
    RunFolder(folder, quality.run_settings(quality.parse_args(settings), 0)).save_step(
        "round-1", {"adapter": str(folder / step["adapter"]), "record": record}
    )
    # Its trace store: the kept round (trained before rounds recorded their pairs) reads them again.
    _traced_round(
        folder / "traces-round1.db",
        {"q0": [("Answer: b", 1.0), ("Answer: a", 0.0)]} | {"q2": [("Answer: a", 1.0), ("Answer: b", 0.0)]},
    )
    one_round = quality.parse_args([*settings[:-1], "1"])
    calls_before = len(strong.calls)
    got2, extra2 = asyncio.run(quality.run_task(task, one_round, 0, tmp_path, strong))
    assert extra2["sft"] == extra["sft"]
    # The kept round, with its adapter's fingerprint (the SFT adapter here) for a run elsewhere, what
    # its pairs held, and how the strong model used the aligned drafts, cell by cell, as for CoWest.
    (kept_round,) = [dict(r) for r in extra2["rounds"]]
    influence = kept_round.pop("draft_influence")
    readings = {k: kept_round.pop(k) for k in ("pair_report", "pair_labels")}
    assert kept_round == {**record, "adapter_sha256": extra["sft"]["adapter_sha256"]}
    assert readings["pair_report"]["pairs"] == 2
    assert readings["pair_labels"]["chosen"] == {"a": 1, "b": 1, "none": 0}
    saved_step = json.loads((folder / "steps" / "round-1.json").read_text())
    assert saved_step["record"]["pair_labels"] == readings["pair_labels"]  # read once, then kept
    names = [r["name"] for r in got2]
    assert names[: len(got)] == [r["name"] for r in got]
    aligned = "CoWest aligned (DPO round 1)"
    outcome = {r["name"]: r["outcomes"] for r in got2}
    weak_right, aligned_right = outcome["weak alone (DPO round 1)"], outcome[aligned]
    strong_right = outcome["strong alone"]
    assert influence["draft right, alone wrong"] == {
        "n": sum(w == "1" and s == "0" for w, s in zip(weak_right, strong_right, strict=True)),
        "cowest_right": sum(
            w == "1" and s == "0" and c == "1"
            for w, s, c in zip(weak_right, strong_right, aligned_right, strict=True)
        ),
    }
    assert sum(c["n"] for c in influence.values()) == len(task.report)
    assert "| t | 0 | aligned round 1 | draft right, alone wrong |" in quality.paired_markdown(
        [{"task": "t", "seed": 0, **extra2}]
    )
    assert names[len(got) :] == ["weak alone (DPO round 1)", aligned]
    assert got2[-1]["pairs"] == 2 and got2[-1]["n"] == len(task.report)
    # Only the round's condition was measured: one strong call per report row.
    assert len(strong.calls) - calls_before == len(task.report)
    compared = [(p["first"], p["second"]) for p in extra2["paired"]]
    assert compared[-3:] == [
        ("CoWest (SFT weak)", aligned),
        ("strong alone", aligned),
        ("weak alone (SFT)", "weak alone (DPO round 1)"),
    ]
    strong_vs_aligned = extra2["paired"][-2]
    assert strong_vs_aligned["second_only"] == sum(
        s == "0" and c == "1" for s, c in zip(strong_right, aligned_right, strict=True)
    )


def test_a_kept_step_whose_adapter_is_gone_is_done_again(tmp_path) -> None:
    from benchmarks.resume import RunFolder

    folder = RunFolder(tmp_path / "r", {"a": 1})
    adapter = tmp_path / "elsewhere" / "v0001"
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text("{}")
    folder.save_step("sft", {"adapter": str(adapter), "extras": {"rows": 3}})
    assert folder.step("sft") == {"adapter": str(adapter), "extras": {"rows": 3}}  # outside: absolute
    (adapter / "adapter_config.json").unlink()
    assert folder.step("sft") is None
    with pytest.raises(SystemExit, match=r"other settings \(a: 1 there, None now; b: None there, 2 now\)"):
        RunFolder(tmp_path / "r", {"b": 2})


def test_a_run_on_another_machine_adopts_what_the_results_file_holds(tmp_path) -> None:
    """The work folder stays on its machine; the results file travels. A fresh folder adopts the
    finished conditions from the rows (per-question outcomes) when the settings agree, and asks the
    strong model nothing for them; paired differences come out the same. Real weak model (SmolLM2)."""
    import asyncio

    import benchmarks.quality as quality
    from cowest_graph.testing import ScriptedChatModel

    task = _tiny_task(trainable=False)
    settings = ["--strong", "standin", "--shots", "1", "--weak-tokens", "4"]
    args = quality.parse_args(settings)
    strong = ScriptedChatModel(respond=lambda m: "Answer: a")
    got, extra = asyncio.run(quality.run_task(task, args, 0, tmp_path / "here", strong))
    names = [r["name"] for r in got]
    assert names == ["strong alone", "weak alone", "CoWest"]
    assert got[0]["outcomes"] == got[2]["outcomes"] == "1010"  # "a" is right on q4 and q6
    assert extra["settings"] == quality.run_settings(args, 0)

    elsewhere = ScriptedChatModel(respond=lambda m: "Answer: b")  # would answer otherwise
    got2, extra2 = asyncio.run(
        quality.run_task(task, args, 0, tmp_path / "there", elsewhere, earlier=(got, extra))
    )
    assert elsewhere.calls == []
    assert got2 == got and extra2["paired"] == extra["paired"]

    other = quality.parse_args([*settings[:-1], "5"])  # other settings: nothing adopted
    got3, _ = asyncio.run(
        quality.run_task(task, other, 0, tmp_path / "other", elsewhere, earlier=(got, extra))
    )
    assert len(elsewhere.calls) == 2 * len(task.report) and got3[0]["outcomes"] == "0101"

    cut = [{**got[0], "outcomes": "101"}]  # not this report's rows
    with pytest.raises(SystemExit, match="'strong alone' holds 3 outcomes for 4 report rows"):
        asyncio.run(quality.run_task(task, args, 0, tmp_path / "cut", elsewhere, earlier=(cut, extra)))


def test_adopted_conditions_are_measured_again_when_the_sft_adapter_comes_out_otherwise(tmp_path) -> None:
    """An adopted condition that used the weak model is kept only while the SFT adapter trained again
    here has the fingerprint of the one it was measured with. Real SFT (SmolLM2 + LoRA)."""
    import asyncio

    import benchmarks.quality as quality
    from cowest_graph.testing import ScriptedChatModel

    task = _tiny_task(trainable=True)
    args = quality.parse_args("--strong standin --shots 1 --weak-tokens 4 --n-sft 2 --rounds 0".split())
    strong = ScriptedChatModel(respond=lambda m: "Answer: b")
    got, extra = asyncio.run(quality.run_task(task, args, 0, tmp_path / "here", strong))
    assert len(extra["sft"]["adapter_sha256"]) == 64

    again = ScriptedChatModel(respond=lambda m: "Answer: b")
    got2, extra2 = asyncio.run(
        quality.run_task(task, args, 0, tmp_path / "there", again, earlier=(got, extra))
    )
    # The same rows, seed and settings train the same adapter on this CPU: nothing is asked again.
    assert extra2["sft"]["adapter_sha256"] == extra["sft"]["adapter_sha256"]
    assert again.calls == [] and got2 == got

    other = {**extra, "sft": {**extra["sft"], "adapter_sha256": "0" * 64}}
    third = ScriptedChatModel(respond=lambda m: "Answer: b")
    got3, _ = asyncio.run(quality.run_task(task, args, 0, tmp_path / "third", third, earlier=(got, other)))
    # Strong alone is kept; the weak model's conditions (weak alone, CoWest) are measured again.
    assert len(third.calls) == len(task.report)
    assert [r["name"] for r in got3] == [r["name"] for r in got]
    assert got3[0] == got[0] and got3[0]["wall_s"] == got[0]["wall_s"]


def test_a_round_collected_elsewhere_trains_from_its_kept_pairs(tmp_path, monkeypatch) -> None:
    """A round's collection (an hour of strong calls on PubMedQA here) travels as a pairs file that
    names each question by its id, not its text: a run elsewhere renders the weak prompts again,
    trains the same DPO adapter from them and collects nothing. Real SFT, drafts and DPO (SmolLM2 +
    LoRA), scripted strong model whose answer hangs on the draft."""
    import asyncio
    import json

    import benchmarks.quality as quality
    import cowest_graph.collect
    from cowest_graph.testing import ScriptedChatModel

    task = _tiny_task(trainable=True)
    args = quality.parse_args(
        "--strong standin --shots 1 --weak-tokens 6 --n-sft 2 --n-collect 4 --rounds 1".split()
    )

    def respond(messages) -> str:
        return "Answer: a" if len(messages[-1].content) % 2 else "Answer: b"

    pairs_dir = tmp_path / "pairs"
    strong = ScriptedChatModel(respond=respond)
    got, extra = asyncio.run(quality.run_task(task, args, 0, tmp_path / "here", strong, pairs_dir=pairs_dir))
    (collected,) = extra["rounds"]
    assert collected["pairs"] > 0 and "pairs_from" not in collected
    kept = pairs_dir / "quality-t-s0-round1.json"
    data = json.loads(kept.read_text())
    assert len(data["rows"]) == collected["pairs"]
    assert {r["id"] for r in data["rows"]} <= {e.id for e in task.train}
    assert "thing" not in kept.read_text() and "prompt" not in data["rows"][0]  # no question text
    assert data["parent_sha256"] == extra["sft"]["adapter_sha256"]

    def must_not_run(*a, **k):
        raise AssertionError("the round was collected again")

    monkeypatch.setattr(cowest_graph.collect, "acollect", must_not_run)
    elsewhere = ScriptedChatModel(respond=respond)
    got2, extra2 = asyncio.run(
        quality.run_task(
            task, args, 0, tmp_path / "there", elsewhere, earlier=(got, extra), pairs_dir=pairs_dir
        )
    )
    (trained,) = extra2["rounds"]
    assert trained["pairs_from"] == kept.name and trained["pairs"] == collected["pairs"]
    # The same pairs train the same adapter: the round's conditions are adopted, nothing is asked.
    assert trained["adapter_sha256"] == collected["adapter_sha256"]
    assert trained["pair_labels"] == collected["pair_labels"]
    assert elsewhere.calls == [] and [r["outcomes"] for r in got2] == [r["outcomes"] for r in got]


def test_kept_pairs_that_do_not_hash_as_they_did_are_collected_again(tmp_path) -> None:
    import json

    from benchmarks.round_pairs import load_round_pairs, make_pairs, save_round_pairs

    def render(q: str) -> tuple[list[dict[str, str]], str]:
        return [{"role": "user", "content": q}], f"<user>{q}"

    path = tmp_path / "p.json"
    ids = {"q1": "id-1", "q2": "id-2"}
    assert save_round_pairs(
        path, make_pairs(["q1", "q2"], render), ids=ids, render=render, parent_sha256="ab", settings={"k": 4}
    )
    keep = {"questions": {v: k for k, v in ids.items()}, "parent_sha256": "ab", "settings": {"k": 4}}
    assert load_round_pairs(path, render=render, **keep) is not None
    # Another prompt template: the prompts render otherwise, so the pairs are not the trained ones.
    assert (
        load_round_pairs(path, render=lambda q: ([{"role": "user", "content": q + "!"}], q), **keep) is None
    )
    assert load_round_pairs(path, render=render, **{**keep, "settings": {"k": 8}}) is None
    data = json.loads(path.read_text())
    data["rows"][0]["chosen"][0]["content"] = "Answer: no"  # edited by hand
    path.write_text(json.dumps(data))
    assert load_round_pairs(path, render=render, **keep) is None
    with pytest.raises(SystemExit, match="'id-2' is not among this round's questions"):
        load_round_pairs(path, render=render, **{**keep, "questions": {"id-1": "q1"}})
    # A prompt that does not render again the same way (cut to fit) is not kept at all.
    other = tmp_path / "q.json"
    assert not save_round_pairs(
        other, make_pairs(["q1"], render), ids=ids, render=lambda q: None, parent_sha256="ab", settings={}
    )
    assert not other.exists()
