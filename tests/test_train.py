"""Real TRL/PEFT training of the embedded SmolLM2: SFT, DPO, adapters, bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from cowest_graph import create_cowest_graph
from cowest_graph.adapters import MANIFEST, AdapterError
from cowest_graph.feedback import build_preference_pairs
from cowest_graph.models import WeakModel, load_weak_model
from cowest_graph.testing import ScriptedChatModel
from cowest_graph.tracing import CowestTracer
from cowest_graph.train import (
    DPOTrainConfig,
    SFTTrainConfig,
    preference_margin,
    train_dpo,
    train_sft,
)

pytestmark = pytest.mark.slow

QUESTIONS = [
    "What colour is the sky on a clear day?",
    "Name a fruit that is yellow.",
    "What do bees make?",
    "Which animal barks?",
]


def by_length(q: str, a: str, r: str | None) -> float:
    return min(1.0, len(a) / 120)


@pytest.fixture(scope="module")
def traced_store(tmp_path_factory: pytest.TempPathFactory, weak: WeakModel) -> str:
    """Real weak drafts for a few questions, refined by a scripted strong model, traced."""
    url = f"sqlite:///{tmp_path_factory.mktemp('traces')}/t.db"
    drafter = weak.model_copy(update={"max_new_tokens": 20, "temperature": 1.0})
    strong = ScriptedChatModel(respond=lambda m: m[-1].text.split("<draft>\n")[-1].split("\n</draft>")[0])
    graph = create_cowest_graph(
        drafter, strong, scorer=by_length, num_drafts=4, measure_influence=True
    ).compile()
    tracer = CowestTracer(url)
    for q in QUESTIONS:
        graph.invoke({"question": q}, config={"callbacks": [tracer]})
    return url


@pytest.fixture(scope="module")
def pairs(traced_store: str):
    return build_preference_pairs(traced_store, min_margin=0.05, max_pairs_per_prompt=2, eval_fraction=0)


def test_training_prompt_is_the_recorded_inference_prompt(pairs) -> None:
    from trl import DPOConfig, DPOTrainer

    fresh = load_weak_model(backend="hf")
    trainer = DPOTrainer(
        model=fresh.hf_model,
        args=DPOConfig(
            output_dir="/tmp/unused", use_cpu=True, bf16=False, gradient_checkpointing=False, report_to="none"
        ),
        train_dataset=pairs["train"].select_columns(["prompt", "chosen", "rejected"]),
        processing_class=fresh.tokenizer,
    )
    for processed, row in zip(trainer.train_dataset, pairs["train"], strict=True):
        recorded = fresh.tokenizer(row["prompt_text"], add_special_tokens=False).input_ids
        assert processed["prompt_ids"] == recorded


def test_dpo_raises_the_margin_and_the_adapter_reloads_and_changes_the_weak_node(
    pairs, tmp_path: Path, weak: WeakModel
) -> None:
    train = pairs["train"]
    assert train.num_rows >= 4
    base = load_weak_model(backend="hf")
    before = preference_margin(base.hf_model, base.tokenizer, train)
    config = DPOTrainConfig(
        max_steps=6, per_device_train_batch_size=2, learning_rate=5e-4, disable_tqdm=True, save_steps=100
    )
    result = train_dpo(pairs, output_dir=tmp_path / "adapters", config=config)
    assert result.version == "v0001" and (result.adapter_dir / "adapter_config.json").exists()
    assert list(result.adapter_dir.glob("adapter_model.safetensors"))
    assert not (result.adapter_dir / "ref").exists(), "only the trained adapter is saved"
    manifest = json.loads((result.adapter_dir / MANIFEST).read_text())
    assert manifest["kind"] == "dpo" and manifest["counts"]["train"] == train.num_rows
    assert manifest["base_model_id"] == weak.model_id and len(manifest["data_hash"]) == 64
    assert manifest["metrics"]["steps"] == 6 and manifest["parent_adapter"] is None
    assert not (tmp_path / "adapters" / ".work").exists() or not any(
        (tmp_path / "adapters" / ".work").iterdir()
    )

    tuned = load_weak_model(backend="hf", adapter=result.adapter_dir)
    after = preference_margin(tuned.hf_model, tuned.tokenizer, train)
    assert after > before + 0.5, f"margin {before:.3f} -> {after:.3f}"
    assert tuned.adapter_version == "v0001"

    ids = base.tokenizer(train[0]["prompt_text"], return_tensors="pt", add_special_tokens=False).input_ids
    with torch.inference_mode():
        p_base = torch.softmax(base.hf_model(ids).logits[0, -1], -1)
        p_tuned = torch.softmax(tuned.hf_model(ids).logits[0, -1], -1)
    assert float((p_base - p_tuned).abs().sum()) > 1e-3, "the adapter changes the next-token distribution"

    # Hot swap in a running graph: the same compiled graph, then the trace names the adapter.
    swap = load_weak_model(backend="llama.cpp", max_new_tokens=4)  # the GGUF adapter training wrote
    graph = create_cowest_graph(swap, ScriptedChatModel(respond=lambda m: "ok"), scorer=by_length).compile()
    tracer = CowestTracer(f"sqlite:///{tmp_path}/swap.db")
    graph.invoke({"question": "before"}, config={"callbacks": [tracer]})
    swap.load_adapter(result.adapter_dir)
    graph.invoke({"question": "after"}, config={"callbacks": [tracer]})
    got = {r["question"]: r for r in tracer.store.iter_runs()}
    assert got["before"]["adapter_version"] is None and got["after"]["adapter_version"] == "v0001"
    assert got["after"]["drafts"][0]["adapter_version"] == "v0001"
    assert manifest["llama_cpp_adapter"] == "adapter_model.gguf"
    assert (result.adapter_dir / "adapter_model.gguf").stat().st_size > 0


def test_sft_lowers_the_loss_and_dpo_continues_from_its_adapter(pairs, tmp_path: Path) -> None:
    data = [
        {"question": f"What is the code word for team {c}?", "answer": f"The code word for team {c} is {w}."}
        for c, w in zip(
            "ABCDEFGH",
            ["falcon", "cedar", "harbor", "quartz", "meadow", "ember", "willow", "tundra"],
            strict=True,
        )
    ]
    import datasets

    dd = datasets.DatasetDict(
        {"train": datasets.Dataset.from_list(data), "eval": datasets.Dataset.from_list(data)}
    )
    root = tmp_path / "adapters"
    sft = train_sft(
        dd,
        output_dir=root,
        config=SFTTrainConfig(
            max_steps=8, per_device_train_batch_size=4, learning_rate=1e-3, disable_tqdm=True
        ),
    )
    metrics = sft.metrics
    assert metrics["eval_loss_after"] < metrics["eval_loss_before"] - 0.2, metrics
    assert sft.manifest["kind"] == "sft" and sft.version == "v0001"

    dpo = train_dpo(
        pairs,
        output_dir=root,
        adapter=sft.adapter_dir,
        config=DPOTrainConfig(max_steps=2, per_device_train_batch_size=2, disable_tqdm=True),
    )
    assert dpo.version == "v0002" and dpo.manifest["parent_adapter"]["version"] == "v0001"
    # The DPO reference is the frozen SFT adapter, not the bare base model: at the first step the
    # policy *is* the reference, so the sigmoid DPO loss is -log sigmoid(0) = ln 2. (Against the
    # base model the SFT adapter's log-ratios would already differ from zero.)
    assert dpo.metrics["first_loss"] == pytest.approx(math.log(2), abs=1e-4), dpo.metrics
    assert load_weak_model(adapter=dpo.adapter_dir).adapter_version == "v0002"


def test_trl_and_peft_configs_are_taken_as_they_are(pairs, tmp_path: Path) -> None:
    from peft import LoraConfig
    from trl import DPOConfig, SFTConfig

    args = DPOConfig(
        output_dir=str(tmp_path / "elsewhere"),
        max_steps=2,
        beta=0.25,
        learning_rate=1e-5,
        per_device_train_batch_size=2,
        bf16=False,
        use_cpu=True,
        report_to="none",
        logging_steps=1,
        disable_tqdm=True,
    )
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    result = train_dpo(pairs, output_dir=tmp_path / "adapters", config=args, peft_config=lora)
    adapter_config = json.loads((result.adapter_dir / "adapter_config.json").read_text())
    assert adapter_config["r"] == 4 and sorted(adapter_config["target_modules"]) == ["q_proj", "v_proj"]
    assert result.manifest["config"]["trl"]["beta"] == 0.25
    assert result.manifest["config"]["lora"]["peft"]["r"] == 4
    assert result.metrics["steps"] == 2
    assert args.output_dir == str(tmp_path / "elsewhere")  # the caller's config is not changed
    assert not (tmp_path / "elsewhere").exists()  # checkpoints stay under the adapters root
    with pytest.raises(TypeError, match="DPOConfig"):
        train_dpo(pairs, output_dir=tmp_path / "never", config=SFTConfig(output_dir="x", use_cpu=True))
    with pytest.raises(ValueError, match="peft_config"):
        train_dpo(pairs, output_dir=tmp_path / "never", adapter=result.adapter_dir, peft_config=lora)
    assert not (tmp_path / "never").exists()


def test_dpo_with_an_nll_term_adds_the_weighted_nll_of_the_chosen_drafts(pairs, tmp_path: Path) -> None:
    """RPO (TRL's "sigmoid" + "sft" losses): at the first step the policy is the reference, so the
    DPO part is log 2 and everything above it is the chosen drafts' NLL, scaled by its weight."""

    def first_loss(name: str, **loss: object) -> float:
        config = DPOTrainConfig(max_steps=1, per_device_train_batch_size=2, disable_tqdm=True, **loss)  # type: ignore[arg-type]
        result = train_dpo(pairs, output_dir=tmp_path / name, config=config)
        recorded = result.manifest["config"]["loss_type"]  # the manifest says which loss trained it
        wanted = loss.get("loss_type", "sigmoid")
        assert (recorded if isinstance(recorded, str) else tuple(recorded)) == wanted
        return float(result.metrics["first_loss"])

    plain = first_loss("dpo")
    once = first_loss("rpo1", loss_type=("sigmoid", "sft"), loss_weights=(1.0, 1.0))
    twice = first_loss("rpo2", loss_type=("sigmoid", "sft"), loss_weights=(1.0, 2.0))
    assert plain == pytest.approx(math.log(2), abs=0.02)
    assert once - plain > 0.05, "the chosen drafts' NLL was added"
    assert twice - plain == pytest.approx(2 * (once - plain), rel=0.1)
    with pytest.raises(ValueError, match="2 weights for 1 loss types"):
        DPOTrainConfig(loss_weights=(1.0, 1.0))


def test_bad_training_input_is_one_clear_error_and_writes_nothing(pairs, tmp_path: Path) -> None:
    out = tmp_path / "never"
    broken = pairs["train"].remove_columns(["rejected"])
    with pytest.raises(ValueError, match="missing column\\(s\\): rejected"):
        train_dpo(broken, output_dir=out)
    with pytest.raises(ValueError, match="train split is empty"):
        train_dpo(pairs["train"].select([]), output_dir=out)
    with pytest.raises(ValueError, match="no SFT examples"):
        train_sft(_empty_qa(), output_dir=out)
    with pytest.raises(ValueError, match="expected question\\+answer"):
        train_sft([{"text": "hello"}], output_dir=out)
    assert not out.exists()


def _empty_qa():
    import datasets

    return datasets.Dataset.from_dict({"question": [], "answer": []})


def test_an_adapter_for_another_base_model_is_refused(tmp_path: Path) -> None:
    from peft import LoraConfig, get_peft_model

    fresh = load_weak_model(backend="hf")
    peft_model = get_peft_model(
        fresh.hf_model, LoraConfig(r=2, target_modules=["q_proj"], task_type="CAUSAL_LM")
    )
    adapter = tmp_path / "foreign"
    peft_model.save_pretrained(adapter)
    (adapter / MANIFEST).write_text(
        json.dumps(
            {"version": "v0009", "base_model_id": "other/model", "base_model_fingerprint": "0123456789abcdef"}
        )
    )
    with pytest.raises(AdapterError, match="trained on base model 'other/model'") as err:
        load_weak_model(adapter=adapter)
    assert "\n" not in str(err.value)
    with pytest.raises(AdapterError, match="not a PEFT adapter directory"):
        load_weak_model(adapter=tmp_path)
