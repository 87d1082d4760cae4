"""The improvement loop: the gate, the `current` pointer, hot reload between runs, the lock, and
a real round (collect -> pairs -> DPO -> gate) that resumes after a kill."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from poisoned import random_adapter_version

from cowest_graph import CowestTracer, create_cowest_graph
from cowest_graph.adapters import (
    AdapterError,
    current_adapter,
    list_adapters,
    promote,
    promotion_history,
    read_manifest,
    rollback,
)
from cowest_graph.data import Example
from cowest_graph.evaluate import ConditionResult
from cowest_graph.gate import GateConfig, gate_decision
from cowest_graph.improve import ImproveLockedError, improve, improve_lock, read_rounds
from cowest_graph.models import load_weak_model
from cowest_graph.testing import ScriptedChatModel


def _result(name: str, correct: list[int], answers: list[str] | None = None, unparseable: float = 0.0):
    n = len(correct)
    return ConditionResult(
        name, n, sum(correct) / n, 0.0, 1.0, None, unparseable, 1.0, 10.0, 0.0,
        correct=correct, answers=answers or ["Answer: x"] * n,
    )  # fmt: skip


EXAMPLES = [Example(str(i), f"q{i}", meta={"category": "days" if i % 2 else "times"}) for i in range(20)]


def test_the_gate_rejects_a_copy_and_a_worse_candidate_and_promotes_a_clearly_better_one() -> None:
    current = _result("current", [1] * 6 + [0] * 14)
    assert not gate_decision(current, current, EXAMPLES).promote  # a copy: no evidence
    worse = _result("candidate", [1] * 3 + [0] * 17)
    decision = gate_decision(current, worse, EXAMPLES)
    assert not decision.promote and "not better" in decision.reasons[0]
    better = _result("candidate", [1] * 16 + [0] * 4)  # 10 gained, 0 lost: p = 0.002
    decision = gate_decision(current, better, EXAMPLES)
    assert decision.promote and decision.paired["second_only"] == 10 and decision.paired["mcnemar_p"] < 0.01
    slightly = _result("candidate", [1] * 8 + [0] * 12)  # 2 gained: p = 0.5
    decision = gate_decision(current, slightly, EXAMPLES)
    assert not decision.promote and "not significant" in decision.reasons[0]
    json.dumps(decision.as_dict())  # the CLI prints it


def test_each_guard_blocks_an_otherwise_better_candidate() -> None:
    current = _result("current", [1] * 6 + [0] * 14)
    better = [1] * 16 + [0] * 4
    noisy = _result("candidate", better, unparseable=0.10)
    assert any("unparseable" in r for r in gate_decision(current, noisy, EXAMPLES).reasons)
    wordy = _result("candidate", better, answers=["Answer: x" * 5] * 20)
    assert any("longer" in r for r in gate_decision(current, wordy, EXAMPLES).reasons)
    # Better overall, but every "times" question (even index) that was right is now wrong.
    lopsided_current = _result("current", [1, 0] * 3 + [0] * 14)
    lopsided = _result("candidate", [0, 1] * 10)
    decision = gate_decision(lopsided_current, lopsided, EXAMPLES, GateConfig(alpha=0.2))
    assert any("category 'times'" in r for r in decision.reasons)
    assert decision.categories["times"]["candidate"] == 0.0


@pytest.fixture(scope="module")
def two_adapters(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("adapters")
    random_adapter_version(root, "v0001", 0)
    random_adapter_version(root, "v0002", 1)
    return root


def test_current_is_an_atomic_pointer_with_history_list_and_rollback(
    two_adapters: Path, tmp_path: Path
) -> None:
    import shutil

    root = tmp_path / "adapters"
    shutil.copytree(two_adapters, root)
    assert current_adapter(root) is None
    promote(root, "v0001")
    promote(root, "v0002")
    assert current_adapter(root) == root / "v0002" and (root / "current").is_symlink()
    rows = list_adapters(root)
    assert [(r["version"], r["current"], r["pairs"]) for r in rows] == [
        ("v0001", False, 8),
        ("v0002", True, 8),
    ]
    assert rollback(root) == root / "v0001" and current_adapter(root) == root / "v0001"
    assert [e["action"] for e in promotion_history(root)] == ["promote", "promote", "rollback"]
    with pytest.raises(AdapterError, match="nothing to roll back to"):
        rollback(root)
    with pytest.raises(AdapterError, match="not a complete adapter version"):
        promote(root, "v0009")
    assert current_adapter(root) == root / "v0001"  # a refused promotion changes nothing


@pytest.mark.parametrize("backend", ["hf", "llama.cpp"])
def test_a_running_graph_picks_up_a_promoted_adapter_between_runs(
    two_adapters: Path, tmp_path: Path, backend: str
) -> None:
    import shutil

    if backend == "llama.cpp":
        pytest.importorskip("llama_cpp")
    root = tmp_path / "adapters"
    shutil.copytree(two_adapters, root)
    promote(root, "v0001")
    weak = load_weak_model(backend=backend, adapter=root / "current", max_new_tokens=4)  # type: ignore[arg-type]
    graph = create_cowest_graph(weak, ScriptedChatModel(respond=lambda m: "ok"), num_drafts=1).compile()
    tracer = CowestTracer(f"sqlite:///{tmp_path}/traces.db")
    graph.invoke({"question": "first"}, config={"callbacks": [tracer]})
    promote(root, "v0002")  # e.g. by `cowest-graph improve` in another process
    graph.invoke({"question": "second"}, config={"callbacks": [tracer]})
    tracer.flush()
    got = {r["question"]: r for r in tracer.store.iter_runs()}
    assert got["first"]["drafts"][0]["adapter_version"] == "v0001"
    assert got["second"]["drafts"][0]["adapter_version"] == "v0002"
    assert weak.adapter_path == str(root / "current")  # still following the link
    tracer.store.close()


def test_a_second_improve_on_one_directory_is_refused_and_a_dead_holder_frees_it(tmp_path: Path) -> None:
    with (
        improve_lock(tmp_path),
        pytest.raises(ImproveLockedError, match="one `improve` per adapters directory"),
    ):
        with improve_lock(tmp_path):
            pass
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom cowest_graph.improve import improve_lock\n"
         f"with improve_lock({str(tmp_path)!r}):\n    print('held', flush=True)\n    time.sleep(60)\n"],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    with pytest.raises(ImproveLockedError, match=f"pid {holder.pid}"):
        with improve_lock(tmp_path):
            pass
    holder.kill()
    holder.wait()
    with improve_lock(tmp_path):  # the OS released the dead process's lock
        pass


def _questions(path: Path, n: int, start: int = 0) -> Path:
    rows = [{"id": f"q{i}", "question": f"Name rule {i}.", "reference": "7"} for i in range(start, start + n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_a_round_trains_a_candidate_the_gate_rejects_and_resumes_after_a_kill(
    two_adapters: Path, tmp_path: Path
) -> None:
    """One real round with a scripted strong model whose answers ignore the drafts: the candidate
    cannot be better, so the gate keeps the current adapter. The first attempt is killed right
    after training; the rerun resumes at evaluation without training again."""
    import shutil

    from cowest_graph.train import DPOTrainConfig

    root = tmp_path / "adapters"
    shutil.copytree(two_adapters / "v0001", root / "v0001")
    store = f"sqlite:///{tmp_path}/traces.db"
    collect_q, eval_q = _questions(tmp_path / "collect.jsonl", 3), _questions(tmp_path / "eval.jsonl", 4, 10)
    scores = iter([0.9, 0.1, 0.8, 0.2] * 50)
    strong = ScriptedChatModel(
        respond=lambda m: "Working: none\nAnswer: 7" if next(scores) > 0.5 else "Answer: 3"
    )
    kwargs = dict(
        strong=strong,
        collect=collect_q,
        dpo=DPOTrainConfig(max_steps=2, per_device_train_batch_size=2, disable_tqdm=True, save_steps=100),
        min_margin=0.5,
        num_drafts=2,
        weak_backend="hf",
        weak_max_new_tokens=8,
    )

    class Killed(Exception):
        pass

    def kill_after_training(number: int, step: str) -> None:
        if step == "trained":
            raise Killed

    with pytest.raises(Killed):
        improve(store, root, eval_q, on_step=kill_after_training, **kwargs)
    rec = read_rounds(root)[0]
    assert rec["steps"] == ["collected", "pairs", "trained"] and not rec["done"]
    assert rec["pairs"] >= 1 and Path(rec["candidate"]).name == "v0002"

    steps: list[str] = []
    records = improve(store, root, eval_q, on_step=lambda n, s: steps.append(s), **kwargs)
    assert steps == ["evaluated", "decided"]  # resumed: no second collection or training
    assert sorted(p.name for p in root.glob("v0*")) == ["v0001", "v0002"]
    (rec,) = records
    assert rec["done"] and not rec["promoted"] and current_adapter(root) == root / "v0001"
    assert rec["gate"]["reasons"] and read_manifest(root / "v0002")["gate"]["promote"] is False
    report = json.loads((root / "report.json").read_text())
    assert report[0]["round"] == 1 and report[0]["pairs"] == rec["pairs"] and not report[0]["promoted"]
    page = (root / "report.html").read_text()
    assert "<svg" in page and "round 1" in page and "rejected" in page
    assert 'src="http' not in page and 'href="http' not in page and "<script" not in page  # self-contained
    assert [r["gate"] for r in list_adapters(root)] == [None, "rejected"]

    # Rounds 2 and 3 in one process: each uses only traces no earlier round did (its own new
    # collection), drafted by the current adapter (v0001: every candidate was rejected), not by the
    # candidate that the previous round evaluated last.
    used_before = set(rec["run_ids"])
    second, third = improve(store, root, eval_q, rounds=2, **kwargs)
    assert (second["round"], third["round"]) == (2, 3)
    assert not used_before & set(second["run_ids"]) and not set(second["run_ids"]) & set(third["run_ids"])
    assert len(second["run_ids"]) == len(third["run_ids"]) == 3
    assert not second["promoted"] and not third["promoted"]
    reader = CowestTracer(store).store
    texts = {}
    for later in (second, third):
        drafts = [d for r in reader.iter_runs() if r["run_id"] in later["run_ids"] for d in r["drafts"]]
        drafted = {d["adapter_version"] for d in drafts}
        assert drafted == {"v0001"}, (later["round"], drafted)
        assert {d["sampling"]["seed"] for d in drafts} == {later["round"] * 1_000_003}
        texts[later["round"]] = sorted(d["text"] for d in drafts)
    # Each round samples anew: the training between them reseeds the global RNGs, and unseeded
    # sampling would replay the same drafts (it did: two rounds gave identical pairs).
    assert texts[2] != texts[3]
    reader.close()
