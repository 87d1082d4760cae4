"""The llama.cpp weak backend: the same contract as the Hugging Face one, on the real SmolLM2.

Equivalence is checked against the HF backend (greedy outputs, with and without a LoRA adapter
converted to GGUF); batching is checked by what each caller gets back, not by timing.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage

pytest.importorskip("llama_cpp")

from cowest_graph import CowestTracer, create_cowest_graph  # noqa: E402
from cowest_graph.feedback import build_preference_pairs  # noqa: E402
from cowest_graph.models import WeakModel, load_weak_model  # noqa: E402
from cowest_graph.models.gguf_convert import ADAPTER_GGUF, lora_to_gguf  # noqa: E402
from cowest_graph.models.llamacpp import LlamaCppWeakModel  # noqa: E402
from cowest_graph.testing import ScriptedChatModel  # noqa: E402

QUESTIONS = [
    "What colour is the sky on a clear day?",
    "Name a fruit that is yellow.",
    "What is two plus two?",
    "Who wrote Hamlet?",
    "What is the capital of France?",
    "How many legs does a spider have?",
    "What do bees make?",
    "Which planet is closest to the sun?",
]


@pytest.fixture(scope="module")
def fast() -> LlamaCppWeakModel:
    weak = load_weak_model(backend="llama.cpp", max_new_tokens=16, temperature=0.0)
    assert isinstance(weak, LlamaCppWeakModel)
    return weak


@pytest.fixture(scope="module")
def greedy_hf() -> WeakModel:
    return load_weak_model(backend="hf", max_new_tokens=16, temperature=0.0)


def _greedy(weak: WeakModel, questions: list[str]) -> list[str]:
    return [weak.invoke([HumanMessage(q)]).text for q in questions]


def test_greedy_outputs_agree_with_the_hf_backend(fast: LlamaCppWeakModel, greedy_hf: WeakModel) -> None:
    ours, theirs = _greedy(fast, QUESTIONS), _greedy(greedy_hf, QUESTIONS)
    assert all(ours), ours
    same = sum(a == b for a, b in zip(ours, theirs, strict=True))
    # The same weights (F16 here, fp32 there): identical text on (nearly) every prompt.
    assert same >= 7, list(zip(ours, theirs, strict=True))


def test_the_call_output_follows_the_weak_contract(fast: LlamaCppWeakModel, greedy_hf: WeakModel) -> None:
    messages = [HumanMessage("Name a colour.")]
    ours = fast.generate([messages], n=3).llm_output or {}
    theirs = greedy_hf.generate([messages], n=3).llm_output or {}
    assert ours["backend"] == "llama.cpp" and theirs["backend"] == "hf"
    assert ours["rendered_prompt"] == theirs["rendered_prompt"] == fast.render(messages)[0]
    assert set(ours) == set(theirs)
    assert ours["token_usage"]["prompt_tokens"] == theirs["token_usage"]["prompt_tokens"] > 0
    assert ours["sampling"]["n"] == 3 and ours["queue_wait_s"] >= 0


def test_k_drafts_come_from_one_engine_call_and_differ(fast: LlamaCppWeakModel, monkeypatch) -> None:  # noqa: ANN001
    calls: list[list[int]] = []
    real = fast.engine.generate

    def spy(prompts, ns, **kw):  # noqa: ANN001, ANN202
        calls.append(list(ns))
        return real(prompts, ns, **kw)

    monkeypatch.setattr(fast.engine, "generate", spy)
    result = fast.generate([[HumanMessage("Write one sentence about cats.")]], n=4, temperature=1.0)
    texts = [g.text for g in result.generations[0]]
    assert calls == [[4]]
    assert len(texts) == 4 and len(set(texts)) > 1


def test_seeded_sampling_is_reproducible(fast: LlamaCppWeakModel) -> None:
    messages = [[HumanMessage("Write one sentence about dogs.")]]
    first = [g.text for g in fast.generate(messages, n=3, temperature=1.0, seed=7).generations[0]]
    again = [g.text for g in fast.generate(messages, n=3, temperature=1.0, seed=7).generations[0]]
    other = [g.text for g in fast.generate(messages, n=3, temperature=1.0, seed=8).generations[0]]
    assert first == again and first != other


def test_concurrent_callers_share_batches_without_mixing_sequences(fast: LlamaCppWeakModel) -> None:
    """8 threads at once: fewer engine calls than callers, and every caller gets exactly the
    greedy answer to its own prompt (a mixed-up sequence would hand it another prompt's text)."""
    alone = _greedy(fast, QUESTIONS)
    results: dict[int, str] = {}
    barrier = threading.Barrier(len(QUESTIONS))

    def one(i: int) -> None:
        barrier.wait()
        results[i] = fast.invoke([HumanMessage(QUESTIONS[i])]).text

    batches_before = len(fast._batcher.batches) if fast._batcher else 0
    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(QUESTIONS))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [results[i] for i in range(len(QUESTIONS))] == alone
    assert fast._batcher is not None
    assert len(fast._batcher.batches) - batches_before < len(QUESTIONS)


@pytest.fixture(scope="module")
def adapter_dir(tmp_path_factory: pytest.TempPathFactory, greedy_hf: WeakModel) -> Path:
    """A LoRA adapter on every attention and MLP projection with random B matrices."""
    from poisoned import save_random_adapter

    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    return save_random_adapter(
        tmp_path_factory.mktemp("adapter") / "random-lora", targets, r=8, alpha=16, seed=0
    )


def test_a_lora_adapter_converted_to_gguf_matches_the_hf_adapter(
    fast: LlamaCppWeakModel, greedy_hf: WeakModel, adapter_dir: Path
) -> None:
    base_out = _greedy(fast, QUESTIONS)
    gguf_file = lora_to_gguf(adapter_dir)
    assert gguf_file == adapter_dir / ADAPTER_GGUF
    hf_adapted = greedy_hf.model_copy()
    hf_adapted.load_adapter(adapter_dir)
    fast.load_adapter(adapter_dir)
    try:
        ours, theirs = _greedy(fast, QUESTIONS), _greedy(hf_adapted, QUESTIONS)
        assert fast.adapter_version == "random-lora"
        traced = fast.generate([[HumanMessage(QUESTIONS[0])]]).llm_output or {}
        assert traced["adapter_version"] == "random-lora"
    finally:
        fast.unload_adapter()
        hf_adapted.unload_adapter()
    changed = sum(a != b for a, b in zip(ours, base_out, strict=True))
    same = sum(a == b for a, b in zip(ours, theirs, strict=True))
    assert changed >= 4, "the adapter should change most greedy outputs"
    # A wrong tensor map or q/k row order would make the two backends disagree everywhere.
    assert same >= 6, list(zip(ours, theirs, strict=True))
    assert _greedy(fast, QUESTIONS) == base_out  # unloaded: the base model again


def test_a_missing_or_foreign_adapter_is_one_clear_error(fast: LlamaCppWeakModel, tmp_path: Path) -> None:
    from cowest_graph.adapters import AdapterError

    with pytest.raises(AdapterError, match="not a PEFT adapter"):
        fast.load_adapter(tmp_path)
    assert fast.adapter_version is None


def test_the_graph_traces_llamacpp_drafts_and_they_make_pairs(tmp_path: Path) -> None:
    weak = load_weak_model(backend="llama.cpp", max_new_tokens=12, temperature=1.0)
    scores = iter([0.9, 0.1, 0.8, 0.2, 0.7, 0.3] * 4)
    strong = ScriptedChatModel(respond=lambda m: "an answer")
    store = f"sqlite:///{tmp_path}/traces.db"
    tracer = CowestTracer(store)
    graph = create_cowest_graph(weak, strong, scorer=lambda q, a, r: next(scores), num_drafts=2).compile()
    for q in QUESTIONS[:3]:
        graph.invoke({"question": q}, config={"callbacks": [tracer]})
    tracer.flush()
    runs = list(tracer.store.iter_runs())
    calls = [c for r in runs for n in r["nodes"] if n["node"] == "weak_draft" for c in n["calls"]]
    assert len(calls) == 3
    assert all(c["backend"] == "llama.cpp" and c["rendered_prompt"].endswith("assistant\n") for c in calls)
    assert all(c["usage"]["output_tokens"] > 0 and c["queue_wait_s"] is not None for c in calls)
    pairs = build_preference_pairs(store, eval_fraction=0.0, seed=0)
    assert pairs["train"].num_rows == 3
    tracer.store.close()
