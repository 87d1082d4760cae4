"""Any LangChain chat model as the weak model: traced graph runs -> DPO-ready pairs -> two real
DPO steps. The HF `WeakModel` records its rendered prompt; a generic chat model records only
messages, and the pair builder renders them with the trained model's chat template."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cowest_graph import CowestTracer, create_cowest_graph
from cowest_graph.feedback import build_preference_pairs
from cowest_graph.models import ensure_default_model, load_hf_weak_model
from cowest_graph.testing import ScriptedChatModel
from cowest_graph.train import DPOTrainConfig, train_dpo

QUESTIONS = ["Name a colour.", "Name a fruit.", "Name an animal."]


def _collect(weak: Any, store: str, *, asynchronous: bool) -> None:
    """3 questions x 2 drafts; the scores alternate high/low, so every prompt yields a pair."""
    scores = iter([0.9, 0.1] * 20)
    strong = ScriptedChatModel(respond=lambda m: "an answer")
    graph = create_cowest_graph(weak, strong, scorer=lambda q, a, r: next(scores), num_drafts=2).compile()
    tracer = CowestTracer(store)
    for q in QUESTIONS:
        if asynchronous:
            import asyncio

            asyncio.run(graph.ainvoke({"question": q}, config={"callbacks": [tracer]}))
        else:
            graph.invoke({"question": q}, config={"callbacks": [tracer]})
    tracer.flush()
    tracer.store.close()


def _two_dpo_steps(pairs: Any, out: Path) -> None:
    result = train_dpo(
        pairs,
        output_dir=out,
        config=DPOTrainConfig(max_steps=2, per_device_train_batch_size=2, disable_tqdm=True, save_steps=100),
    )
    assert result.metrics["steps"] == 2 and (result.adapter_dir / "adapter_model.safetensors").exists()


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(ensure_default_model())


def test_chat_huggingface_over_a_local_pipeline_gives_dpo_ready_pairs(tmp_path: Path, tokenizer: Any) -> None:
    """`ChatHuggingFace(llm=HuggingFacePipeline(...))`: sync-only (its async path raises
    NotImplementedError), so the graph runs it in a worker thread under `ainvoke` too."""
    from langchain_huggingface import ChatHuggingFace, HuggingFacePipeline
    from transformers import pipeline

    hf = load_hf_weak_model()
    pipe = pipeline(
        "text-generation",
        model=hf.hf_model,
        tokenizer=tokenizer,
        max_new_tokens=12,
        do_sample=True,
        temperature=1.0,
        return_full_text=False,
    )
    model_id = hf.model_id
    weak = ChatHuggingFace(llm=HuggingFacePipeline(pipeline=pipe, model_id=model_id), tokenizer=tokenizer)
    store = f"sqlite:///{tmp_path}/traces.db"
    _collect(weak, store, asynchronous=True)
    with pytest.raises(ValueError, match="only messages"):
        build_preference_pairs(store, eval_fraction=0.0)  # nothing to render with: a clear error
    pairs = build_preference_pairs(store, eval_fraction=0.0, tokenizer=tokenizer)
    assert pairs["train"].num_rows == 3
    assert pairs.report.rendered_at_pair_time == 6
    # The trace names the model by its id, not its class: pairs for that model id are its own runs.
    own = build_preference_pairs(store, eval_fraction=0.0, tokenizer=tokenizer, model_id=model_id)
    assert own["train"].num_rows == 3
    with pytest.raises(ValueError, match="drafted by weak model"):
        build_preference_pairs(store, eval_fraction=0.0, tokenizer=tokenizer, model_id="some/other-model")
    assert "chat template sha256:" in (pairs.report.template or "")
    for row in pairs["train"]:
        # The prompt is what ChatHuggingFace itself rendered for the model.
        assert row["prompt_text"] == weak._to_chat_prompt([_message(m) for m in row["prompt"]]), row[
            "prompt_text"
        ]
    _two_dpo_steps(pairs, tmp_path / "adapters")


def test_chat_openai_on_llama_cpp_serving_the_weak_gguf_gives_dpo_ready_pairs(
    tmp_path: Path, tokenizer: Any
) -> None:
    pytest.importorskip("llama_cpp.server")
    from cowest_graph.models import embedded_gguf_path, local_strong

    store = f"sqlite:///{tmp_path}/traces.db"
    with local_strong(embedded_gguf_path(), n_ctx=2048) as server:
        weak = server.chat_model(temperature=1.0, max_tokens=12)
        _collect(weak, store, asynchronous=False)
        served_as = server.model_name
    with pytest.raises(ValueError, match="drafted by weak model") as err:
        build_preference_pairs(store, eval_fraction=0.0, tokenizer=tokenizer, model_id="some/other-model")
    assert "\n" not in str(err.value)
    pairs = build_preference_pairs(store, eval_fraction=0.0, tokenizer=tokenizer, model_id=served_as)
    assert pairs["train"].num_rows == 3 and pairs.report.rendered_at_pair_time == 6
    row = pairs["train"][0]
    rendered = tokenizer.apply_chat_template(row["prompt"], tokenize=False, add_generation_prompt=True)
    assert row["prompt_text"] == rendered
    assert row["prompt_text"].endswith("<|im_start|>assistant\n")
    _two_dpo_steps(pairs, tmp_path / "adapters")


def test_the_hf_weak_model_pairs_keep_the_prompt_it_recorded(tmp_path: Path, tokenizer: Any) -> None:
    weak = load_hf_weak_model(max_new_tokens=12, temperature=1.0)
    store = f"sqlite:///{tmp_path}/traces.db"
    _collect(weak, store, asynchronous=False)
    pairs = build_preference_pairs(store, eval_fraction=0.0, tokenizer=tokenizer, model_id=weak.model_id)
    assert pairs["train"].num_rows == 3 and pairs.report.rendered_at_pair_time == 0
    for row in pairs["train"]:
        assert row["prompt_text"] == weak.render([_message(m) for m in row["prompt"]])[0]
    _two_dpo_steps(pairs, tmp_path / "adapters")


def _message(turn: dict[str, str]) -> Any:
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

    kinds = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
    return kinds[turn["role"]](turn["content"])
