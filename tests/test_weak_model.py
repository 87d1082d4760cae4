"""The weak model: the real embedded SmolLM2 behind a LangChain chat model."""

from __future__ import annotations

import asyncio
import time

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from cowest_graph.models import WeakModel, base_model_fingerprint, ensure_default_model, load_weak_model


def test_default_model_is_cached_as_safetensors() -> None:
    path = ensure_default_model()
    assert (path / "config.json").exists()
    assert list(path.glob("*.safetensors")), "the converted model is saved as safetensors"
    assert len(base_model_fingerprint(path)) == 16
    start = time.perf_counter()
    again = ensure_default_model()
    assert again == path and time.perf_counter() - start < 1.0  # no second conversion


def test_render_uses_the_chat_template(weak: WeakModel) -> None:
    prompt, cut = weak.render([SystemMessage("Be brief."), HumanMessage("Hello?")])
    expected = weak.tokenizer.apply_chat_template(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello?"}],
        tokenize=False,
        add_generation_prompt=True,
    )
    assert prompt == expected and cut == 0
    assert prompt.endswith("<|im_start|>assistant\n")


def test_n_drafts_come_from_one_generate_call(weak: WeakModel, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = weak.hf_model.generate

    def spy(*args, **kwargs):
        calls.append(kwargs["num_return_sequences"])
        return real(*args, **kwargs)

    monkeypatch.setattr(weak.hf_model, "generate", spy)
    result = weak.generate([[HumanMessage("Name a fruit.")]], n=4)
    assert calls == [4], "4 drafts must be sampled by one batched generate"
    texts = [g.text for g in result.generations[0]]
    assert len(texts) == 4 and all(isinstance(t, str) and t for t in texts)
    out = result.llm_output
    assert out is not None and out["rendered_prompt"].startswith("<|im_start|>system")
    assert out["token_usage"]["prompt_tokens"] > 0 and out["sampling"]["n"] == 4
    usage = result.generations[0][0].message.usage_metadata
    assert usage is not None and 0 < usage["output_tokens"] <= weak.max_new_tokens


def test_seed_makes_sampling_reproducible() -> None:
    seeded = load_weak_model(max_new_tokens=12, temperature=1.0, seed=123)
    first = [g.text for g in seeded.generate([[HumanMessage("Say something.")]], n=2).generations[0]]
    second = [g.text for g in seeded.generate([[HumanMessage("Say something.")]], n=2).generations[0]]
    assert first == second


def test_greedy_batch_matches_single(weak: WeakModel) -> None:
    """Left padding in a batch must not change what a prompt generates (greedy)."""
    short, _ = weak.render([HumanMessage("Hi")])
    long, _ = weak.render([HumanMessage("Explain in one sentence why the sky looks blue.")])
    batched = weak.generate_from_prompts([short, long], n=1, temperature=0, max_new_tokens=8)
    alone = weak.generate_from_prompts([long], n=1, temperature=0, max_new_tokens=8)
    assert batched[1][0].text == alone[0][0].text


def test_truncation_rule_cuts_the_last_user_message() -> None:
    small = load_weak_model(max_new_tokens=8, max_input_tokens=60)
    question = "word " * 200
    prompt, cut = small.render([SystemMessage("Keep this system text."), HumanMessage(question)])
    assert cut > 0
    assert "Keep this system text." in prompt and prompt.endswith("<|im_start|>assistant\n")
    assert len(small.tokenizer(prompt, add_special_tokens=False).input_ids) <= 60
    result = small.generate([[HumanMessage(question)]])
    assert result.llm_output is not None and result.llm_output["truncated_tokens"] > 0


async def test_async_generation_does_not_block_the_event_loop(weak: WeakModel) -> None:
    ticks = 0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await asyncio.sleep(0.01)

    task = asyncio.create_task(ticker())
    reply = await weak.ainvoke("Name a planet.")
    done.set()
    await task
    assert reply.text
    assert ticks >= 10, f"the event loop ticked only {ticks} times during generation"


def test_missing_model_dir_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="not a local Hugging Face model directory"):
        load_weak_model(tmp_path, backend="hf")
    with pytest.raises(FileNotFoundError, match="exactly one .gguf file"):
        load_weak_model(tmp_path, backend="llama.cpp")


def test_local_strong_specs_are_greedy_with_the_given_budget() -> None:
    from cowest_graph.models.strong import resolve_chat_model

    by_name = resolve_chat_model("local", local_max_new_tokens=7)
    by_dir = resolve_chat_model(str(ensure_default_model()), local_max_new_tokens=9)
    overridden = resolve_chat_model("smollm2", local_max_new_tokens=9, temperature=0.5)
    assert isinstance(by_name, WeakModel) and (by_name.temperature, by_name.max_new_tokens) == (0.0, 7)
    assert isinstance(by_dir, WeakModel) and (by_dir.temperature, by_dir.max_new_tokens) == (0.0, 9)
    assert isinstance(overridden, WeakModel) and overridden.temperature == 0.5
